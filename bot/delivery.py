"""Workers that drain the outbox: chat cards and notes, and reply publishing.

Both are synchronous `run_once()` loops driven by whoever hosts them (the bot's
event loop, a thread, or the demo), so tests step them deterministically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from bot.cards import PUBLISH
from bot.digest import Digest
from bot.errors import DeliveryError, PublishError
from bot.health import Health
from bot.meta_rules import private_reply_problem
from bot.metrics import Metrics
from bot.models import CaseState, network_name
from bot.outbox import CARD, CHAT_KINDS, NOTE, NOTIFY, OutboxItem, backoff_seconds
from bot.ports import ChatSurface, Clock, MessageRef, PublishedReply, PublishRequest, ReplyPublisher
from bot.service import CareService
from bot.store import Store

log = logging.getLogger(__name__)


MAX_PUBLISH_ATTEMPTS = 8


class ChatWorker:
    """Posts and updates cards on one surface, oldest first, paced per channel."""

    def __init__(
        self,
        service: CareService,
        surface: ChatSurface,
        *,
        messages_per_second: float = 1.0,
        metrics: Metrics | None = None,
        kinds: tuple[str, ...] = CHAT_KINDS,
        health: Health | None = None,
        shared: bool = False,
    ) -> None:
        """`shared`: other surfaces serve the same outbox, so take only this surface's
        items (the outbox queues one per surface, see bot.outbox.chat_surfaces)."""
        self.service = service
        self.surface = surface
        self.metrics = metrics
        self.health = health
        self.kinds = kinds
        self.only = surface.name if shared else None
        self.clock: Clock = service.clock
        self.min_gap = 1.0 / messages_per_second
        self._last_sent: dict[str, datetime] = {}

    def _cooling(self) -> set[str]:
        now = self.clock.now()
        return {
            channel
            for channel, at in self._last_sent.items()
            if (now - at).total_seconds() < self.min_gap
        }

    def run_once(self) -> bool:
        """Deliver one item if one is due; False when there was nothing to do now."""
        item = self.service.outbox.claim(
            self.kinds, skip_channels=self._cooling(), surface=self.only
        )
        if item is None:
            return False
        with self.service.outbox.released_on_error(item):
            return self._deliver(item)

    def _deliver(self, item: OutboxItem) -> bool:
        assert item.channel is not None
        if item.kind in {CARD, NOTE}:
            channel = self.surface.channel_for(item.channel)
        else:
            channel = self.surface.target(item.channel)
        if channel is None:
            self.service.outbox.done(item.id, {"skipped": f"no {self.surface.name} channel"})
            return True
        try:
            if item.kind == CARD:
                assert item.case_id is not None
                self._send_card(item.case_id, channel)
            elif item.kind == NOTE:
                assert item.case_id is not None
                self._send_note(
                    item.case_id, str(item.payload.get("text", "")), item.payload.get("refs", {})
                )
            elif item.kind == NOTIFY:
                self.surface.notify(channel, str(item.payload.get("text", "")))
            else:
                self.surface.send_digest(channel, Digest.from_json(item.payload["digest"]))
        except DeliveryError as exc:
            self._last_sent[item.channel] = self.clock.now()
            if self.health is not None:
                self.health.answered(self.surface.name, str(exc), outage=exc.outage)
            if exc.permanent:
                log.error("giving up on %s (outbox #%s): %s", item.kind, item.id, exc)
                with self.service.store.write() as db:
                    self.service.outbox.fail(db, item.id, str(exc))
            else:
                delay = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else backoff_seconds(item.attempts)
                )
                # An outage is logged once by the health registry, not once per item.
                log.log(
                    logging.DEBUG if exc.outage and self.health else logging.WARNING,
                    "%s (outbox #%s) will retry in %.0fs: %s",
                    item.kind,
                    item.id,
                    delay,
                    exc,
                )
                self.service.outbox.retry_later(item.id, str(exc), delay)
            return True
        self._last_sent[item.channel] = self.clock.now()
        if self.health is not None:
            self.health.ok(self.surface.name)
        self.service.outbox.done(item.id)
        if self.metrics is not None:
            self.metrics.cards_posted.labels(surface=self.surface.name, kind=item.kind).inc()
        return True

    def _ref(self, case_id: int) -> MessageRef | None:
        row = self.service.store.one(
            "SELECT channel, message_id FROM chat_messages WHERE case_id = ? AND surface = ?",
            [case_id, self.surface.name],
        )
        return MessageRef(row["channel"], row["message_id"]) if row else None

    def _send_card(self, case_id: int, channel: str) -> None:
        view = self.service.view(case_id)
        ref = self._ref(case_id)
        if ref is not None:
            self.surface.update_card(ref, view)
            return
        ref = self.surface.post_card(channel, view)
        with self.service.store.write() as db:
            db.execute(
                "INSERT INTO chat_messages (case_id, surface, channel, message_id, posted_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (case_id, surface) DO UPDATE SET"
                " channel = excluded.channel, message_id = excluded.message_id,"
                " posted_at = excluded.posted_at",
                (
                    case_id,
                    self.surface.name,
                    ref.channel,
                    ref.message_id,
                    self.clock.now().isoformat(),
                ),
            )

    def _send_note(self, case_id: int, text: str, refs: dict[str, list[str]]) -> None:
        known = refs.get(self.surface.name)
        ref = MessageRef(known[0], known[1]) if known else self._ref(case_id)
        if ref is None:
            # The card never made it (or moved): the card itself shows the current state.
            return
        self.surface.post_note(ref, text)

    def drain(self, limit: int = 10_000) -> int:
        """Deliver everything due now, ignoring pacing (for the demo and tests)."""
        sent = 0
        while sent < limit:
            self._last_sent.clear()
            if not self.run_once():
                break
            sent += 1
        return sent


class PublishWorker:
    """Publishes approved replies exactly once.

    Before the network call the case is marked uncertain (committed): a reply may be out
    from then on. Only a clear answer settles it: the post's id, or a refusal that means
    nothing was posted. Otherwise (a crash, a timeout, a 5xx, X's "duplicate" while the
    reply is not yet visible) the case stays uncertain and the next attempt asks the
    network first; nothing about the case may change meanwhile.
    """

    def __init__(
        self,
        service: CareService,
        publisher: ReplyPublisher,
        *,
        metrics: Metrics | None = None,
        health: Health | None = None,
    ) -> None:
        self.service = service
        self.publisher = publisher
        self.metrics = metrics
        self.health = health

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.publishes.labels(outcome=outcome).inc()

    def recover(self) -> int:
        """At start-up: attempts a dead process left in flight are reconciled on next run."""
        return self.service.outbox.release_in_flight([PUBLISH])

    def run_once(self) -> bool:
        if self.service.is_paused():
            return False
        item = self.service.outbox.claim([PUBLISH])
        if item is None:
            return False
        # Attempts are kept: the retry reconciles with X before it could post again.
        with self.service.outbox.released_on_error(item):
            return self._publish(item)

    def _publish(self, item: OutboxItem) -> bool:
        assert item.case_id is not None
        case = self.service.get_case(item.case_id)
        if case.state is not CaseState.APPROVED:
            self.service.outbox.done(item.id, {"skipped": f"case is {case.state.value}"})
            return True
        if case.draft_text is None or case.draft_hash != case.approved_hash:
            self.service.record_failed(
                item.id, case.id, "the approved text no longer matches the draft"
            )
            return True
        request = self._request(
            case.id,
            case.draft_text,
            item.id,
            item.payload.get("in_reply_to_id"),
            private=case.draft_private,
        )
        # Uncertain: an earlier attempt may have posted without us hearing back. The network
        # is checked first, every time, until it shows the reply or lets us post.
        was_uncertain = case.publish_uncertain
        found: PublishedReply | None = None
        try:
            if was_uncertain:
                found = self.publisher.find_existing(request)
            if found is None and request.private and self._window_closed(item, request):
                return True
            if found is None:
                self.service.begin_publish_attempt(case.id)
                reply = self.publisher.publish(request)
            else:
                reply = found
        except PublishError as exc:
            if self.health is not None:
                self.health.answered(case.network, str(exc), outage=exc.outage)
            self._failed_attempt(item, case.id, exc, was_uncertain=was_uncertain)
            return True
        if self.health is not None:
            self.health.ok(case.network)
        self._count("published")
        self.service.record_published(
            item.id,
            case.id,
            reply,
            found=found is not None,
            private_to=request.in_reply_to_id if request.private else None,
        )
        log.info("case #%s published: %s", case.id, reply.url or reply.post_id)
        return True

    def _failed_attempt(
        self, item: OutboxItem, case_id: int, exc: PublishError, *, was_uncertain: bool
    ) -> None:
        delay = backoff_seconds(item.attempts)
        if was_uncertain or exc.maybe_posted:
            # Whatever this attempt says, a reply may be out: never fail (a failed case
            # invites a rewrite, i.e. a second reply); check again later.
            # Once per case: later checks of the same case are routine.
            log.log(
                logging.DEBUG if was_uncertain else logging.WARNING,
                "case #%s: the reply may be out; checking again in %.0fs: %s",
                case_id,
                delay,
                exc,
            )
            self._count("uncertain")
            self.service.record_outcome_unknown(
                item.id, case_id, str(exc), delay, first=not was_uncertain
            )
        elif exc.retry_after is not None and not exc.permanent:
            # A rate limit with a reset time: wait exactly that long, however long the
            # network asks (an hour-long throttle must not fail a good reply).
            log.warning("case #%s: %s; publishing again in %.0fs", case_id, exc, exc.retry_after)
            self._count("retry")
            self.service.record_not_posted(item.id, case_id, str(exc), max(1.0, exc.retry_after))
        elif exc.permanent or item.attempts >= MAX_PUBLISH_ATTEMPTS:
            log.error("case #%s could not be published: %s", case_id, exc)
            self._count("failed")
            self.service.record_failed(item.id, case_id, str(exc))
        else:
            log.warning("case #%s publish attempt %s failed: %s", case_id, item.attempts, exc)
            self._count("retry")
            self.service.record_not_posted(item.id, case_id, str(exc), delay)

    def _window_closed(self, item: OutboxItem, request: PublishRequest) -> bool:
        """Meta's private-reply rules, checked again at send time (an approval on day 6
        may only get its turn on day 8): if they forbid it now, the case fails with the
        reason and nothing is sent."""
        problem = private_reply_problem(
            self.service.store.db, request.network, request.in_reply_to_id, self.service.clock.now()
        )
        if problem is None:
            return False
        assert item.case_id is not None
        self._count("failed")
        self.service.record_failed(item.id, item.case_id, problem[1])
        return True

    def _request(
        self,
        case_id: int,
        text: str,
        item_id: int,
        in_reply_to_id: str | None,
        *,
        private: bool = False,
    ) -> PublishRequest:
        store: Store = self.service.store
        row = store.one(
            """
            SELECT c.network, a.handle,
                (SELECT id FROM mentions WHERE case_id = c.id
                 ORDER BY created_at DESC LIMIT 1) AS latest
            FROM cases c JOIN authors a ON a.network = c.network AND a.id = c.author_id
            WHERE c.id = ?
            """,
            [case_id],
        )
        assert row is not None
        return PublishRequest(
            # Unique across databases too (a restored backup, a staging copy on the same
            # brand account): networks dedupe and reconcile by this key.
            attempt_key=f"{self.service.install_id()}-case-{case_id}-item-{item_id}",
            network=row["network"],
            in_reply_to_id=in_reply_to_id or row["latest"],
            author_handle=row["handle"],
            text=text,
            private=private,
        )

    def drain(self, limit: int = 1000) -> int:
        done = 0
        while done < limit and self.run_once():
            done += 1
        return done


class PublisherRouter:
    """One ReplyPublisher per network: a case is answered on the network it came from,
    through that network's one service credential."""

    def __init__(self, publishers: Mapping[str, ReplyPublisher]) -> None:
        self.publishers = dict(publishers)

    def _for(self, request: PublishRequest) -> ReplyPublisher:
        publisher = self.publishers.get(request.network)
        if publisher is None:
            raise PublishError(
                f"socialcare does not publish to {network_name(request.network)}: enable"
                f" [sources.{request.network}] with its credential, or set dry_run = true",
                permanent=True,
                outage=False,
            )
        return publisher

    def publish(self, request: PublishRequest) -> PublishedReply:
        return self._for(request).publish(request)

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        return self._for(request).find_existing(request)


class DryRunPublisher:
    """Records what would be posted, in the bot's own database. Posts nothing."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def publish(self, request: PublishRequest) -> PublishedReply:
        with self.store.write() as db:
            db.execute(
                "INSERT INTO dry_run_posts (attempt_key, network, in_reply_to_id, text, posted_at,"
                " private) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    request.attempt_key,
                    request.network,
                    request.in_reply_to_id,
                    request.text,
                    self.clock.now().isoformat(),
                    int(request.private),
                ),
            )
        found = self.find_existing(request)
        assert found is not None
        return found

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        # Like a network's check: any reply of ours of that kind to that post counts.
        row = self.store.one(
            "SELECT id FROM dry_run_posts WHERE network = ? AND in_reply_to_id = ?"
            " AND private = ? ORDER BY id LIMIT 1",
            [request.network, request.in_reply_to_id, int(request.private)],
        )
        if row is None:
            return None
        kind = "private/" if request.private else ""
        return PublishedReply(
            post_id=f"dry-run-{row['id']}",
            url=f"dry-run://{request.network}/{kind}{row['id']}",
        )
