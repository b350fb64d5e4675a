"""The outbox: cards go out in order, paced per channel, survive outages; replies publish once."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.delivery import ChatWorker, DryRunPublisher, PublishWorker
from bot.errors import DeliveryError, PublishError, Refusal
from bot.models import CaseState
from bot.ports import FixedClock, MessageRef, PublishedReply, PublishRequest
from bot.service import CareService
from bot.store import Store
from bot.views import CaseView
from tests.conftest import AGENT, LEAD, new_case

REPLY = "Sorry about that! DM us your booking reference and we will sort it out."


@dataclass
class RecordingSurface:
    """A ChatSurface that records calls; `down` makes it fail like an outage."""

    name: str = "test"
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    down: DeliveryError | None = None

    def channel_for(self, department_id: str) -> str | None:
        return {"care": "C0CARE", "marketing": "C0MKT"}.get(department_id)

    def post_card(self, channel: str, view: object) -> MessageRef:
        assert isinstance(view, CaseView)
        self._maybe_fail()
        self.calls.append(("post", channel, f"#{view.case.id} {view.case.state.value}"))
        return MessageRef(channel, f"ts-{view.case.id}")

    def update_card(self, ref: MessageRef, view: object) -> None:
        assert isinstance(view, CaseView)
        self._maybe_fail()
        self.calls.append(("update", ref.channel, f"#{view.case.id} {view.case.state.value}"))

    def post_note(self, ref: MessageRef, text: str) -> None:
        self._maybe_fail()
        self.calls.append(("note", ref.channel, text))

    def target(self, to: str) -> str | None:
        return {"managers": "C0MANAGERS"}.get(to) or (
            to.removeprefix("user:") if to.startswith("user:") else self.channel_for(to)
        )

    def notify(self, channel: str, text: str) -> None:
        self._maybe_fail()
        self.calls.append(("notify", channel, text))

    def send_digest(self, channel: str, digest: object) -> None:
        self._maybe_fail()
        self.calls.append(("digest", channel, getattr(digest, "title", "")))

    def _maybe_fail(self) -> None:
        if self.down:
            raise self.down


@pytest.fixture
def surface() -> RecordingSurface:
    return RecordingSurface()


@pytest.fixture
def chat(service: CareService, surface: RecordingSurface) -> ChatWorker:
    return ChatWorker(service, surface, messages_per_second=1.0)


def run_until_idle(
    worker: ChatWorker, clock: FixedClock, *, step: float = 0.5, limit: int = 500
) -> None:
    for _ in range(limit):
        if not worker.run_once():
            if not worker.service.store.scalar(
                "SELECT count(*) FROM outbox WHERE state = 'pending' AND kind != 'publish'"
            ):
                return
            clock.advance(step)
    raise AssertionError("outbox did not drain")


def test_card_then_updates_and_thread_notes_for_each_change(
    service: CareService, chat: ChatWorker, surface: RecordingSurface, clock: FixedClock
) -> None:
    case_id = new_case(service)
    run_until_idle(chat, clock)
    service.claim(AGENT, case_id)
    run_until_idle(chat, clock)
    assert surface.calls == [
        ("post", "C0CARE", f"#{case_id} new"),
        ("update", "C0CARE", f"#{case_id} claimed"),
        ("note", "C0CARE", "Claimed by <@U0AGENT1>"),
    ]


def test_posts_are_paced_to_one_per_second_per_channel(
    service: CareService, chat: ChatWorker, surface: RecordingSurface, clock: FixedClock
) -> None:
    for i in range(3):
        new_case(service, f"@AcmeAir flight {i} delayed, refund?")
    new_case(service, "Thank you @AcmeAir, wonderful crew!")  # marketing
    assert chat.run_once() and chat.run_once()  # one per channel
    assert not chat.run_once(), "a second post to the same channel within a second must wait"
    clock.advance(1.0)
    assert chat.run_once()
    assert [c[1] for c in surface.calls] == ["C0CARE", "C0MKT", "C0CARE"]


def test_an_outage_queues_cards_and_they_post_in_order_when_it_ends(
    service: CareService, chat: ChatWorker, surface: RecordingSurface, clock: FixedClock
) -> None:
    surface.down = DeliveryError("connection refused")
    ids = [new_case(service, f"@AcmeAir problem number {i}, refund please") for i in range(4)]
    for _ in range(120):  # an hour of retries at most every 300 s
        chat.run_once()
        clock.advance(30)
    assert surface.calls == []
    assert service.store.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'") == 4
    surface.down = None
    clock.advance(300)
    run_until_idle(chat, clock)
    assert [c[2] for c in surface.calls] == [f"#{i} new" for i in ids]


def test_rate_limit_retry_after_is_honoured(
    service: CareService, chat: ChatWorker, surface: RecordingSurface, clock: FixedClock
) -> None:
    new_case(service)
    surface.down = DeliveryError("ratelimited", retry_after=30)
    assert chat.run_once()
    surface.down = None
    clock.advance(29)
    assert not chat.run_once()
    clock.advance(1)
    assert chat.run_once()
    assert len(surface.calls) == 1


def test_a_permanent_failure_does_not_block_the_channel(
    service: CareService, chat: ChatWorker, surface: RecordingSurface, clock: FixedClock
) -> None:
    new_case(service)
    surface.down = DeliveryError("channel_not_found", permanent=True)
    assert chat.run_once()
    surface.down = None
    second = new_case(service, "@AcmeAir a different problem: my seat was double booked")
    clock.advance(1)
    run_until_idle(chat, clock)
    assert surface.calls == [("post", "C0CARE", f"#{second} new")]
    failed = service.store.one("SELECT state, last_error FROM outbox WHERE id = 1")
    assert failed == {"state": "failed", "last_error": "channel_not_found"}


# ------------------------------------------------------------------ publishing


class FlakyPublisher:
    """Fails transiently `fail_times` times, optionally *after* posting (the worst case)."""

    def __init__(
        self, store: Store, clock: FixedClock, fail_times: int, posted_anyway: bool
    ) -> None:
        self.inner = DryRunPublisher(store, clock)
        self.fail_times = fail_times
        self.posted_anyway = posted_anyway
        self.publish_calls = 0

    def publish(self, request: PublishRequest) -> PublishedReply:
        self.publish_calls += 1
        if self.fail_times:
            self.fail_times -= 1
            if self.posted_anyway:
                self.inner.publish(request)
            raise PublishError("timed out", permanent=False, maybe_posted=True)
        return self.inner.publish(request)

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        return self.inner.find_existing(request)


def approved_case(service: CareService) -> int:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    service.approve(LEAD, case_id)
    return case_id


@pytest.mark.parametrize("posted_anyway", [False, True])
def test_a_timeout_is_reconciled_before_posting_again(
    service: CareService, store: Store, clock: FixedClock, posted_anyway: bool
) -> None:
    case_id = approved_case(service)
    flaky = FlakyPublisher(store, clock, fail_times=1, posted_anyway=posted_anyway)
    worker = PublishWorker(service, flaky)
    assert worker.run_once()
    assert service.get_case(case_id).state is CaseState.APPROVED
    clock.advance(60)
    assert worker.run_once()
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED
    assert store.scalar("SELECT count(*) FROM dry_run_posts") == 1
    assert flaky.publish_calls == (1 if posted_anyway else 2)


def test_a_crash_while_sending_is_reconciled_after_restart(
    service: CareService, store: Store, clock: FixedClock
) -> None:
    case_id = approved_case(service)
    publisher = DryRunPublisher(store, clock)
    # The dead process had marked the attempt `sending` and the case uncertain, posted,
    # then died before recording the post.
    item = service.outbox.claim(["publish"])
    assert item is not None
    service.begin_publish_attempt(case_id)
    target = service.get_case(case_id).mention_id
    key = f"{service.install_id()}-case-{case_id}-item-{item.id}"
    publisher.publish(PublishRequest(key, "x", target, "maya", REPLY))
    restarted = PublishWorker(service, publisher)
    assert restarted.recover() == 1
    assert restarted.drain() == 1
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert store.scalar("SELECT count(*) FROM dry_run_posts") == 1


def test_permanent_publish_errors_fail_the_case_with_the_reason(
    service: CareService, store: Store, clock: FixedClock
) -> None:
    class Refusing:
        def publish(self, request: PublishRequest) -> PublishedReply:
            raise PublishError("401 unauthorized: check the X credentials", permanent=True)

        def find_existing(self, request: PublishRequest) -> PublishedReply | None:
            return None

    case_id = approved_case(service)
    PublishWorker(service, Refusing()).drain()
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED
    assert "401 unauthorized" in (case.note or "")
    service.retry(AGENT, case_id)
    PublishWorker(service, DryRunPublisher(store, clock)).drain()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert store.scalar("SELECT count(*) FROM dry_run_posts") == 1


def test_double_approval_publishes_once(
    service: CareService, publisher: PublishWorker, store: Store
) -> None:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    service.approve(LEAD, case_id)
    with pytest.raises(Refusal, match="already approved"):
        service.approve(LEAD, case_id)  # a second click changes nothing and says why
    publisher.drain()
    assert store.scalar("SELECT count(*) FROM dry_run_posts") == 1
    case = service.get_case(case_id)
    assert case.published_url and case.first_response_at is not None
