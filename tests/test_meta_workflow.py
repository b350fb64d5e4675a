"""The Meta adapter and the workflow together: a private reply and a hidden comment go
from a card action, through approval and the outbox, to the fake Graph API — once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import Refusal
from bot.models import CaseState
from bot.runtime import Runtime
from tests.conftest import AGENT, AGENT2, LEAD, START
from tests.fakes.meta import FakeGraph, start_fake_graph
from tests.fakes.slack import FakeSlack, start_fake_slack
from tests.test_meta_webhook import comment_delivery, deliver, make_runtime

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


def test_a_private_reply_goes_out_once_as_a_message_not_a_comment(
    runtime: Runtime, graph: FakeGraph
) -> None:
    case_id, comment = a_comment_case(runtime, graph)
    service = runtime.service
    service.claim(AGENT, case_id)
    service.reply(AGENT, case_id, PRIVATE, private=True)
    service.approve(LEAD, case_id)
    assert runtime.publish_worker.drain() == 1
    assert [(m["comment_id"], m["text"]) for m in graph.messages] == [(comment, PRIVATE)]
    assert graph.page_replies(comment) == [], "nothing was posted publicly"
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED
    assert runtime.publish_worker.drain() == 0 and len(graph.messages) == 1
    # Meta allows one private reply per comment: a second one is refused before approval.
    with pytest.raises(Refusal, match="already"):
        service.reply(AGENT2, case_id, "One more thing!", private=True)


def test_a_private_reply_approved_in_the_window_but_sent_after_it_is_not_sent(
    runtime: Runtime, graph: FakeGraph
) -> None:
    case_id, comment = a_comment_case(runtime, graph)
    service = runtime.service
    service.reply(AGENT, case_id, PRIVATE, private=True)
    service.approve(LEAD, case_id)
    # Publishing waited (paused, an outage) past Meta's 7 days.
    later = timedelta(days=8)
    runtime.clock.advance(later.total_seconds())  # type: ignore[attr-defined]
    graph.now = START + later
    assert runtime.publish_worker.drain() == 1
    assert graph.messages == []
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED and "7 days" in (case.note or "")


def test_a_manager_hides_the_comment_on_facebook_and_the_card_says_so(
    runtime: Runtime, graph: FakeGraph, slack: FakeSlack
) -> None:
    case_id, comment = a_comment_case(runtime, graph)
    service = runtime.service
    with pytest.raises(Refusal, match="managers"):
        service.hide(AGENT, case_id, "abuse")
    service.hide(LEAD, case_id, "personal data posted publicly")
    assert graph.nodes[comment].hidden is False, "nothing happens before the outbox runs"
    assert runtime.moderation_worker.drain() == 1
    assert graph.nodes[comment].hidden is True
    [chat] = runtime.chat_workers
    chat.drain()
    last = slack.calls_to("chat.update")[-1] if slack.calls_to("chat.update") else None
    shown = str(last or slack.calls_to("chat.postMessage")[-1])
    assert "hidden" in shown.lower() and "personal data posted publicly" in shown
    entry = service.store.one(
        "SELECT * FROM audit WHERE action = 'hide' AND coalesce(outcome, 'ok') = 'ok'"
        " ORDER BY seq DESC"
    )
    assert entry is not None and entry["actor"] == "slack:U0LEAD"
    service.unhide(LEAD, case_id)
    assert runtime.moderation_worker.drain() == 1
    assert graph.nodes[comment].hidden is False


def test_a_signed_delivery_the_bot_cannot_read_is_logged_not_silently_dropped(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    body = json.dumps({"object": "page", "entry": [{"id": "1", "messaging": [{}]}]}).encode()
    assert deliver(runtime, body)[0] == 200
    with caplog.at_level("WARNING"):
        assert runtime.meta_inbox.drain() == 1
    assert "nothing to read: no changes with a value" in caplog.text
    assert runtime.service.queue("care") == []


def test_an_instagram_comment_mention_is_read_even_if_meta_will_not_say_who_wrote_it(
    runtime: Runtime, graph: FakeGraph
) -> None:
    """Meta's mentioned_comment reference does not list `username`: if it refuses the
    field, the comment is read without it (and answered without an @name), not lost."""
    from tests.fakes.meta import IG_ACCOUNT_ID, delivery, graph_error

    other = graph.add_media("holiday pics", owner="lu", at=START)
    comment = graph.add_ig_comment(other, "@acmeair where is my refund?", username="lu", at=START)
    graph.queue(
        "GET",
        IG_ACCOUNT_ID,
        400,
        graph_error(100, "(#100) Tried accessing nonexisting field (username)"),
    )
    change = {"field": "mentions", "value": {"media_id": other, "comment_id": comment}}
    assert deliver(runtime, delivery("instagram", IG_ACCOUNT_ID, [change]))[0] == 200
    assert runtime.meta_inbox.drain() == 1
    [case] = runtime.service.queue("care")
    assert case.mention_id == f"mention:{other}:{comment}"
    assert runtime.service.view(case.id).text == "@acmeair where is my refund?"
