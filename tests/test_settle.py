"""An admin settles by hand a publish whose outcome the network will never tell (the
post was deleted, the brand was blocked): the checks stop and the record says who."""

from __future__ import annotations

import json

import pytest

from bot.commands import run_command
from bot.delivery import PublishWorker
from bot.errors import PublishError
from bot.models import CaseState
from bot.ports import PublishedReply, PublishRequest
from bot.service import CareService
from tests.conftest import ADMIN, AGENT, LEAD, new_case

REPLY = "Sorry about the delay! Please DM us your booking reference."


class NeverAnswers:
    """A network that takes the post but never confirms or shows it."""

    def __init__(self) -> None:
        self.posts: list[PublishRequest] = []
        self.checks = 0

    def publish(self, request: PublishRequest) -> PublishedReply:
        self.posts.append(request)
        raise PublishError("timed out", permanent=False, maybe_posted=True)

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        self.checks += 1
        raise PublishError("403: the post is not visible to the brand", permanent=True)


def stuck_case(service: CareService, network: NeverAnswers) -> tuple[int, PublishWorker]:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    service.approve(LEAD, case_id)
    worker = PublishWorker(service, network)
    assert worker.drain() == 1
    service.clock.advance(600)  # type: ignore[attr-defined]
    assert worker.drain() == 1  # checked, still unknown
    assert service.get_case(case_id).publish_uncertain
    return case_id, worker


def test_settled_as_published_records_the_link_and_stops_checking(
    service: CareService,
) -> None:
    network = NeverAnswers()
    case_id, worker = stuck_case(service, network)
    answer = run_command(
        service,
        ADMIN,
        f"settle {case_id} published https://x.com/AcmeAir/status/1790000000000000001",
    )
    assert answer.ok, answer.text
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED and not case.publish_uncertain
    assert case.published_url == "https://x.com/AcmeAir/status/1790000000000000001"
    row = service.store.one("SELECT published_id FROM cases WHERE id = ?", [case_id])
    assert row is not None and row["published_id"] == "1790000000000000001"
    service.clock.advance(3600)  # type: ignore[attr-defined]
    checks = network.checks
    assert worker.drain() == 0 and network.checks == checks, "no more checks or posts"
    assert len(network.posts) == 1
    entry = service.store.one("SELECT * FROM audit WHERE action = 'publish_ok'")
    assert entry is not None and entry["actor"] == "slack:U0ADMIN"
    assert json.loads(entry["detail"])["settled_by_hand"] is True


def test_settled_as_not_posted_fails_the_case_and_retry_posts_once(
    service: CareService,
) -> None:
    network = NeverAnswers()
    case_id, worker = stuck_case(service, network)
    answer = run_command(service, ADMIN, f"settle #{case_id} not-posted")
    assert answer.ok and "can be retried" in answer.text
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED and not case.publish_uncertain
    entry = service.store.one("SELECT * FROM audit WHERE action = 'publish_failed'")
    assert entry is not None and entry["actor"] == "slack:U0ADMIN"

    class Posts(NeverAnswers):
        def publish(self, request: PublishRequest) -> PublishedReply:
            self.posts.append(request)
            return PublishedReply("1790000000000000002", "https://x.com/AcmeAir/status/2")

    service.retry(AGENT, case_id)
    posting = Posts()
    assert PublishWorker(service, posting).drain() == 1
    assert len(posting.posts) == 1 and posting.checks == 0, "posted without a stale check"
    assert service.get_case(case_id).state is CaseState.PUBLISHED


@pytest.mark.parametrize("words", ["edit", "dismiss"])
def test_the_refusal_while_uncertain_tells_how_to_settle(service: CareService, words: str) -> None:
    case_id, _ = stuck_case(service, NeverAnswers())
    reply = run_command(
        service, LEAD, f"reply {case_id} new words" if words == "edit" else f"dismiss {case_id} x"
    )
    assert not reply.ok and f"settle {case_id} not-posted" in reply.text


def test_a_long_rate_limit_is_waited_out_without_failing_the_reply(
    service: CareService,
) -> None:
    """A network that says "come back in an hour" ten times: the reply waits each time for
    as long as asked and goes out once; attempts spent waiting do not fail it."""

    class Throttled(NeverAnswers):
        def __init__(self) -> None:
            super().__init__()
            self.refusals = 10

        def publish(self, request: PublishRequest) -> PublishedReply:
            self.posts.append(request)
            if self.refusals:
                self.refusals -= 1
                raise PublishError("429 Too Many Requests", permanent=False, retry_after=3600)
            return PublishedReply("1790000000000000003", "https://x.com/AcmeAir/status/3")

    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    service.approve(LEAD, case_id)
    network = Throttled()
    worker = PublishWorker(service, network)
    for _ in range(10):
        assert worker.drain() == 1
        assert service.get_case(case_id).state is CaseState.APPROVED
        service.clock.advance(3599)  # type: ignore[attr-defined]
        assert worker.drain() == 0, "not before the network said"
        service.clock.advance(1)  # type: ignore[attr-defined]
    assert worker.drain() == 1
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(network.posts) == 11 and network.checks == 0


def test_a_private_reply_is_settled_as_sent_without_a_link_and_counts_as_the_one(
    service: CareService,
) -> None:
    """A private message has no public URL: the admin's word is the record, and Meta's
    one-private-reply-per-comment rule then holds for it."""
    from bot.errors import Refusal

    case_id = new_case(service, network="facebook")
    service.reply(AGENT, case_id, REPLY, private=True)
    service.approve(LEAD, case_id)
    assert PublishWorker(service, NeverAnswers()).drain() == 1
    assert service.get_case(case_id).publish_uncertain
    answer = run_command(service, ADMIN, f"settle {case_id} published")
    assert answer.ok, answer.text
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    sent = service.store.query("SELECT comment_id, case_id FROM private_replies")
    assert sent == [{"comment_id": service.get_case(case_id).mention_id, "case_id": case_id}]
    with pytest.raises(Refusal):
        service.reply(AGENT, case_id, "Another private word", private=True)
