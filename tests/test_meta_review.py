"""Review of the Meta adapter as built (issue 13): each test reproduces a way a care team
could get a second reply, a wrong "sent", or a lost comment, through the fake Graph API and
the real runtime."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import Refusal
from bot.models import CaseState, Mention
from bot.runtime import Runtime
from tests.conftest import AGENT, LEAD, START
from tests.fakes.meta import IG_ACCOUNT_ID, FakeGraph, graph_error, start_fake_graph
from tests.fakes.slack import FakeSlack, start_fake_slack
from tests.test_meta_webhook import MAYA, comment_delivery, deliver, make_runtime

PRIVATE = "Hi Maya, please send us your booking reference here and we will sort it out."


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with start_fake_graph() as fake:
        fake.now = START
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with start_fake_slack() as fake:
        yield fake


@pytest.fixture
def runtime(tmp_path: Path, graph: FakeGraph, slack: FakeSlack) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path, graph, slack)
    yield runtime
    runtime.store.close()


def a_comment_case(runtime: Runtime, graph: FakeGraph) -> tuple[int, str]:
    comment, body = comment_delivery(graph)
    assert deliver(runtime, body)[0] == 200
    assert runtime.meta_inbox.drain() == 1
    [case] = runtime.service.queue("care")
    return case.id, comment


def approve_private(runtime: Runtime, case_id: int) -> None:
    runtime.service.claim(AGENT, case_id)
    runtime.service.reply(AGENT, case_id, PRIVATE, private=True)
    runtime.service.approve(LEAD, case_id)


def later(runtime: Runtime, graph: FakeGraph, days: float) -> None:
    """Time passes, for the bot and for Meta alike."""
    runtime.clock.advance(timedelta(days=days).total_seconds())  # type: ignore[attr-defined]
    graph.now += timedelta(days=days)


def test_a_private_reply_whose_answer_was_lost_is_not_failed_after_the_window_closes(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Sent on day 6.9, the answer lost; the check comes after day 7. The message is out:
    the case must say so, not fail (a failed case invites a public reply on top)."""
    case_id, comment = a_comment_case(runtime, graph)
    later(runtime, graph, 6.9)
    approve_private(runtime, case_id)
    graph.lose_next("POST", "messages")
    assert runtime.publish_worker.drain() == 1
    assert len(graph.messages) == 1
    assert runtime.service.get_case(case_id).publish_uncertain
    later(runtime, graph, 0.3)
    runtime.publish_worker.drain()
    case = runtime.service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED, case.note
    assert [m["comment_id"] for m in graph.messages] == [comment]


def test_a_comment_already_answered_privately_elsewhere_is_not_reported_as_our_reply(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Someone answered the comment privately from Meta Business Suite first: Meta refuses
    ours (10900). Our words never reached the customer; the card must not say they did."""
    case_id, comment = a_comment_case(runtime, graph)
    graph.messages.append({"comment_id": comment, "text": "from the inbox", "message_id": "m_1"})
    approve_private(runtime, case_id)
    assert runtime.publish_worker.drain() == 1
    case = runtime.service.get_case(case_id)
    assert case.state is CaseState.FAILED
    assert "already" in (case.note or "") and "privately" in (case.note or "")
    assert [m["text"] for m in graph.messages] == ["from the inbox"]
    sent = runtime.store.scalar("SELECT count(*) FROM private_replies")
    assert sent == 0, "nothing of ours was sent"


def test_an_acknowledged_delivery_survives_a_surprise_while_it_is_ingested(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Meta got its 200; then ingest fails once (the database blinked). The delivery must
    come round again, not sit `sending` until someone restarts the bot."""
    comment, body = comment_delivery(graph)
    assert deliver(runtime, body)[0] == 200
    inbox = runtime.meta_inbox
    real_ingest = inbox.ingest
    blinks = [RuntimeError("database connection lost")]

    def flaky(mentions: list[Mention]) -> object:
        if blinks:
            raise blinks.pop()
        return real_ingest(mentions)

    inbox.ingest = flaky
    assert inbox.run_once()  # the surprise is logged and the delivery put back
    assert runtime.service.queue("care") == []
    later(runtime, graph, 1 / 24)
    runtime.service.outbox.renew()  # the lease loop keeps what this living process holds
    inbox.drain()
    [case] = runtime.service.queue("care")
    assert case.mention_id == comment


def ig_comment_case(runtime: Runtime, graph: FakeGraph) -> int:
    media = graph.add_media("Lisbon", at=START - timedelta(hours=3))
    comment = graph.add_ig_comment(media, "where is my bag?", username="bo", at=START)
    runtime.service.ingest_many(
        [
            Mention(
                network="instagram",
                id=comment,
                author_id="igsid-bo",
                author_handle="bo",
                author_name="bo",
                text="where is my bag?",
                created_at=START,
                in_reply_to_id=media,
                conversation_id=media,
            )
        ]
    )
    [case] = [c for c in runtime.service.queue("care") if c.network == "instagram"]
    return case.id


def test_a_private_reply_longer_than_a_direct_message_may_be_is_refused_when_drafted(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Messenger takes 2,000 characters, Instagram Direct 1,000 bytes: a longer private
    reply passes the public limits (8,000 / 2,200) and would fail only after approval."""
    fb_case, _ = a_comment_case(runtime, graph)
    ig_case = ig_comment_case(runtime, graph)
    service = runtime.service
    with pytest.raises(Refusal, match="2000") as fb:
        service.reply(AGENT, fb_case, "Please tell us more. " * 100, private=True)
    assert fb.value.code == "bad_reply"
    with pytest.raises(Refusal, match="1000"):
        service.reply(AGENT, ig_case, "Per favore, scrivici. " * 50, private=True)
    # Accented letters are two bytes each: 600 characters can be over Instagram's 1,000 bytes.
    with pytest.raises(Refusal, match="bytes"):
        service.reply(AGENT, ig_case, "é" * 600, private=True)
    # The same words as a public reply are fine: the public limits are the networks' own.
    assert service.reply(AGENT, ig_case, "Per favore, scrivici. " * 50).draft_text
    # A private reply within the limit goes through, without an @handle: it is a message.
    case = service.reply(AGENT, ig_case, "Sorry Bo, please DM us your bag tag.", private=True)
    assert case.draft_text == "Sorry Bo, please DM us your bag tag."
    assert graph.messages == []


def notes(runtime: Runtime) -> list[str]:
    rows = runtime.store.query("SELECT payload FROM outbox WHERE kind = 'note' ORDER BY id")
    return [json.loads(r["payload"])["text"] for r in rows]


def test_hiding_a_comment_deleted_meanwhile_says_so_not_that_a_reply_was_refused(
    runtime: Runtime, graph: FakeGraph
) -> None:
    case_id, comment = a_comment_case(runtime, graph)
    del graph.nodes[comment]  # the customer deleted it before the manager's hide went out
    runtime.service.hide(LEAD, case_id, "personal data posted publicly")
    assert runtime.moderation_worker.drain() == 1
    last = notes(runtime)[-1]
    assert last.startswith("Could not hide the comment on Facebook")
    assert "reply" not in last and "no longer exists" in last
    assert runtime.service.get_case(case_id).hidden_state is None
    assert len(graph.calls_to("POST", comment)) == 1, "a permanent answer is not retried"


def test_a_visitor_post_is_answered_privately_by_its_post_id(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """A visitor post on the page is a case of its own; Meta's private reply names it as
    `recipient.post_id` (a `comment_id` that is a post is refused)."""
    post = graph.add_post("Lost my bag on TP123, help", author=MAYA, at=START)
    runtime.service.ingest_many(
        [
            Mention(
                network="facebook",
                id=post,
                author_id=MAYA[0],
                author_handle=MAYA[0],
                author_name=MAYA[1],
                text="Lost my bag on TP123, help",
                created_at=START,
            )
        ]
    )
    [case] = runtime.service.queue("care")
    approve_private(runtime, case.id)
    assert runtime.publish_worker.drain() == 1
    assert runtime.service.get_case(case.id).state is CaseState.PUBLISHED
    assert [(m["comment_id"], m["text"]) for m in graph.messages] == [(post, PRIVATE)]


def test_a_meta_error_that_echoes_the_token_puts_it_nowhere(
    runtime: Runtime, graph: FakeGraph, slack: FakeSlack
) -> None:
    """Meta's answer to a token it cannot parse quotes the token ("Malformed access token
    EAA..."). The card, the case, the audit log and the outbox must not."""
    case_id, comment = a_comment_case(runtime, graph)
    runtime.service.claim(AGENT, case_id)
    runtime.service.reply(AGENT, case_id, "Sorry Maya, we are looking into it.")
    runtime.service.approve(LEAD, case_id)
    malformed = {
        "error": {"message": f"Malformed access token {graph.token}", "code": 190, "type": "x"}
    }
    graph.queue("POST", f"{comment}/comments", 400, malformed)
    assert runtime.publish_worker.drain() == 1
    case = runtime.service.get_case(case_id)
    assert case.state is CaseState.FAILED and "META_PAGE_ACCESS_TOKEN" in (case.note or "")
    [chat] = runtime.chat_workers
    chat.drain()
    stored = "\n".join(
        str(dict(row))
        for table in ("cases", "audit", "outbox", "drafts")
        for row in runtime.store.query(f"SELECT * FROM {table}")  # noqa: S608
    )
    assert "Malformed access token" in stored, "Meta's words are kept"
    assert graph.token not in stored
    assert graph.token not in str(slack.calls)


def test_a_post_published_while_the_bot_was_down_has_its_comments_backfilled(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Down from Friday night to Monday morning: a post scheduled for Saturday and its
    comments that day are new to the bot, yet older than a first run's one-day look back."""
    runtime.poll_sources()  # the bot has run before: every source has its cursors
    saturday = START + timedelta(days=1)
    post = graph.add_post("Weekend sale", at=saturday)
    said = graph.add_comment(post, "the sale link is broken", author=MAYA, at=saturday)
    media = graph.add_media("Weekend in Lisbon", at=saturday)
    asked = graph.add_ig_comment(media, "is the sale on for Lisbon?", username="bo", at=saturday)
    later(runtime, graph, 2.5)
    runtime.poll_sources()
    assert {c.mention_id for c in runtime.service.queue("care")} == {said, asked}


def test_an_instagram_mention_elsewhere_is_refused_private_replies_and_hiding_at_once(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """An @mention in someone else's caption is not a comment on the brand's posts: Meta
    takes no private reply to it and the brand cannot hide it. Refused when asked (and
    audited), not after approval or on the card later."""
    media = graph.add_media("Lost my bag on the flight @acmeair", owner="bo", at=START)
    runtime.service.ingest_many(
        [
            Mention(
                network="instagram",
                id=f"mention:{media}",
                author_id="igsid-bo",
                author_handle="bo",
                author_name="bo",
                text="Lost my bag on the flight @acmeair",
                created_at=START,
                conversation_id=f"mention:{media}",
            )
        ]
    )
    [case] = runtime.service.queue("care")
    with pytest.raises(Refusal, match="mention") as private:
        runtime.service.reply(AGENT, case.id, "Thanks Bo, please DM us!", private=True)
    assert private.value.code == "wrong_network"
    with pytest.raises(Refusal, match="mention"):
        runtime.service.hide(LEAD, case.id, "spam")
    assert runtime.service.get_case(case.id).hidden_state is None
    refused = [e["action"] for e in runtime.service.audit_trail(case.id) if e["outcome"]]
    assert "hide" in refused and "reply_private" in refused
    assert runtime.store.scalar("SELECT count(*) FROM outbox WHERE kind = 'moderate'") == 0


def test_one_edge_meta_refuses_does_not_stop_the_rest_of_the_backfill(
    runtime: Runtime, graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    """An app without the permission for `/{page}/tagged` (or `/{ig-user}/tags`) gets a
    refusal there every poll: the comments under the page's posts must still come in."""
    post = graph.add_post("Timetable", at=START - timedelta(hours=5))
    said = graph.add_comment(
        post, "refund still missing", author=MAYA, at=START - timedelta(hours=1)
    )
    media = graph.add_media("Lisbon", at=START - timedelta(hours=5))
    asked = graph.add_ig_comment(media, "where is my bag?", username="bo", at=START)
    permission = graph_error(
        10, "(#10) This endpoint requires the pages_read_user_content permission"
    )
    graph.queue("GET", "/tagged", 400, permission)
    graph.queue("GET", f"{IG_ACCOUNT_ID}/tags", 400, permission)
    runtime.poll_sources()
    assert {c.mention_id for c in runtime.service.queue("care")} == {said, asked}
    # The operator is told what Meta refused, once, not every poll.
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("tagged" in w and "pages_read_user_content" in w for w in warned), warned


def test_an_unsent_private_reply_checked_after_the_window_fails_once_with_the_reason(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Day 6.9: Meta answers 500 (nothing sent, but we cannot know). Day 7.1: Meta says the
    window is closed, not "already replied", so nothing went out: the case fails with the
    reason instead of asking Meta again every few minutes for ever."""
    case_id, _ = a_comment_case(runtime, graph)
    later(runtime, graph, 6.9)
    approve_private(runtime, case_id)
    graph.queue("POST", "messages", 500, graph_error(2, "Service temporarily unavailable"))
    assert runtime.publish_worker.drain() == 1
    assert runtime.service.get_case(case_id).publish_uncertain
    later(runtime, graph, 0.3)
    for _ in range(3):
        runtime.publish_worker.drain()
        later(runtime, graph, 0.01)
    case = runtime.service.get_case(case_id)
    assert case.state is CaseState.FAILED and "7 days" in (case.note or "")
    assert graph.messages == []
    assert len(graph.calls_to("POST", "messages")) == 2, "asked once more, then stopped"


def test_instagram_comments_meta_refused_once_are_read_at_the_next_poll(
    runtime: Runtime, graph: FakeGraph
) -> None:
    media = graph.add_media("Lisbon", at=START - timedelta(hours=5))
    asked = graph.add_ig_comment(media, "where is my bag?", username="bo", at=START)
    graph.queue("GET", f"{media}/comments", 400, graph_error(100, "(#100) Please retry"))
    runtime.poll_sources()
    assert runtime.service.queue("care") == []
    later(runtime, graph, 0.01)
    runtime.poll_sources()
    assert [c.mention_id for c in runtime.service.queue("care")] == [asked]


def test_a_hide_during_a_long_meta_throttle_waits_it_out_instead_of_failing(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Meta's page throttles last up to an hour; eight quick retries (8.5 minutes) used to
    end in "Could not hide", leaving personal data up until a manager noticed and asked
    again. A throttle or an outage waits; only a refusal ends the request."""
    case_id, comment = a_comment_case(runtime, graph)
    for _ in range(12):
        graph.throttle("POST", comment, code=80001)
    runtime.service.hide(LEAD, case_id, "personal data posted publicly")
    for _ in range(14):
        runtime.moderation_worker.drain()
        later(runtime, graph, 5 / 1440)  # five minutes
    assert graph.nodes[comment].hidden is True
    assert runtime.service.get_case(case_id).hidden_state == "hidden"
    assert not [n for n in notes(runtime) if n.startswith("Could not hide")]
