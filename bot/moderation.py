"""Hiding comments: the outbox worker that carries out a manager's hide or unhide.

`CareService.hide()` records the request, audits it and queues a `moderate` item in the
same transaction; `ModerationWorker` calls the network's CommentModerator and records
the result (card, thread note, audit). Hiding is idempotent on the networks, so an
attempt whose answer was lost is simply made again; an outage or a throttle retries with
back-off until it passes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot import audit
from bot.cards import queue_card
from bot.errors import PublishError
from bot.health import Health
from bot.meta_rules import MODERATE
from bot.models import SYSTEM, network_name
from bot.outbox import OutboxItem, backoff_seconds
from bot.ports import Clock, CommentModerator
from bot.service import CareService
from bot.store import Store

log = logging.getLogger(__name__)

MAX_MODERATION_ATTEMPTS = 8
_SYSTEM_KEY = f"{SYSTEM.surface}:{SYSTEM.user_id}"


class ModerationWorker:
    """Hides and shows comments as managers asked, oldest first, one comment at a time."""

    def __init__(
        self, service: CareService, moderator: CommentModerator, *, health: Health | None = None
    ) -> None:
        self.service = service
        self.moderator = moderator
        self.health = health

    def recover(self) -> int:
        """At start-up: requests a dead process left in flight are made again."""
        return self.service.outbox.release_in_flight([MODERATE])

    def run_once(self) -> bool:
        # The kill switch stops everything the bot does on the networks, this too.
        if self.service.is_paused():
            return False
        item = self.service.outbox.claim([MODERATE])
        if item is None:
            return False
        with self.service.outbox.released_on_error(item):
            self._moderate(item)
        return True

    def drain(self, limit: int = 1000) -> int:
        done = 0
        while done < limit and self.run_once():
            done += 1
        return done

    def _moderate(self, item: OutboxItem) -> None:
        assert item.case_id is not None
        case = self.service.get_case(item.case_id)
        hidden = bool(item.payload.get("hidden"))
        comment_id = str(item.payload.get("comment_id") or case.mention_id)
        # The case's comments (items queued before there was a list name the first only);
        # hiding is idempotent, so a retry after a partial failure redoes them all.
        comment_ids = [str(c) for c in item.payload.get("comment_ids") or [comment_id]]
        try:
            for each in comment_ids:
                self.moderator.set_hidden(case.network, each, hidden)
        except PublishError as exc:
            if self.health is not None:
                self.health.answered(case.network, str(exc), outage=exc.outage)
            # An outage or a throttle (Meta's last up to an hour) is waited out: giving up
            # would leave what a manager asked to hide on show. The cap is for the rest.
            gave_up = item.attempts >= MAX_MODERATION_ATTEMPTS and not exc.outage
            if exc.permanent or gave_up:
                self._record(item, hidden, error=str(exc))
            else:
                log.warning("moderate #%s failed, will retry: %s", item.id, exc)
                self.service.outbox.retry_later(item.id, str(exc), backoff_seconds(item.attempts))
            return
        if self.health is not None:
            self.health.ok(case.network)
        self._record(item, hidden)

    def _record(self, item: OutboxItem, hidden: bool, *, error: str | None = None) -> None:
        """The outcome on the case, the card, its thread and the audit log, at once."""
        assert item.case_id is not None
        service = self.service
        now = service.clock.now()
        with service.store.write() as db:
            if not service.outbox.holds(db, item.id):
                # Our lease lapsed mid-call and another process took the request over:
                # it records the outcome (hiding is idempotent), once.
                return
            case = service._load(db, item.case_id)
            network = network_name(case.network)
            if error is None:
                service.outbox.finish(db, item.id, {"hidden": hidden})
                state = "hidden" if hidden else None
                note = (
                    f"Comment hidden on {network} (by <@{case.hidden_by}>: {case.hidden_reason})"
                    if hidden
                    else f"Comment shown again on {network} (by <@{case.hidden_by}>)"
                )
            else:
                service.outbox.fail(db, item.id, error)
                # Back to what it was before the request.
                state = None if hidden else "hidden"
                verb = "hide" if hidden else "show again"
                note = f"Could not {verb} the comment on {network}: {error}"
            # Only if no later request took over meanwhile (a hide then an unhide).
            pending = "hiding" if hidden else "unhiding"
            db.execute(
                "UPDATE cases SET hidden_state = ? WHERE id = ? AND hidden_state = ?",
                (state, case.id, pending),
            )
            audit.append(
                db,
                at=now,
                actor=_SYSTEM_KEY,
                action="hide_ok" if hidden else "unhide_ok",
                case_id=case.id,
                outcome="ok" if error is None else "failed",
                detail={"comment_id": item.payload.get("comment_id"), "outbox_id": item.id}
                | ({"error": error} if error else {}),
            )
            queue_card(db, case.id, now, note=note)


class ModeratorRouter:
    """One CommentModerator per network (Meta's for facebook and instagram)."""

    def __init__(self, moderators: Mapping[str, CommentModerator]) -> None:
        self.moderators = dict(moderators)

    def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None:
        moderator = self.moderators.get(network)
        if moderator is None:
            raise PublishError(
                f"socialcare cannot hide comments on {network_name(network)}: enable"
                f" [sources.{network}] with its credential, or set dry_run = true",
                permanent=True,
                outage=False,
            )
        moderator.set_hidden(network, comment_id, hidden)


class DryRunModerator:
    """Records what would be hidden or shown again, in the bot's own database."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None:
        with self.store.write() as db:
            db.execute(
                "INSERT INTO dry_run_moderations (network, comment_id, hidden, at)"
                " VALUES (?, ?, ?, ?)",
                (network, comment_id, int(hidden), self.clock.now().isoformat()),
            )
