"""Use cases: ingest mentions and drive cases through claim, draft, approval and publish.

Every action runs in one `BEGIN IMMEDIATE` transaction that reads the case, checks the
actor's role and the state machine, writes the change, appends to the audit log and
queues the card update, so either all of it happens or none. A refusal changes nothing
but is itself audited (in its own transaction) and raised for the surface to show.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlite_utils import Database

from bot import audit, desk, outbox
from bot.cards import NOTE, PUBLISH, queue_card
from bot.classify import Classifier, OfflineClassifier
from bot.config import Config
from bot.errors import AlreadyDelivered, InvalidTransition, NotAllowed, Refusal, UnknownCase
from bot.meta_rules import (
    MODERATE,
    case_comments,
    elsewhere_reason,
    last_hide_request,
    not_meta_reason,
    private_channel,
    private_reply_length_problem,
    private_reply_problem,
)
from bot.models import (
    Actor,
    Case,
    CaseState,
    Classification,
    Intent,
    Mention,
    Priority,
    Sentiment,
    network_name,
    reply_hash,
    text_hash,
)
from bot.pipeline import IngestPipeline, IngestStats
from bot.ports import Clock, PublishedReply
from bot.sla import BusinessCalendar
from bot.store import Store
from bot.textcheck import check_reply, starts_with_handle
from bot.views import AuthorView, CaseView, EarlierContact, GroupedCase, ThreadPost
from bot.workflow import Action, Role, advance, authorize, is_admin, role_of

log = logging.getLogger(__name__)
T = TypeVar("T")

PAUSED_KEY = "publishing_paused"
_CASE_REF = re.compile(r"^#?(\d{1,9})$")
# A typed approval names the draft by the start of its hash; 6 hex characters make a
# chance match with an edited draft one in 16 million.
MIN_HASH_PREFIX = 6
SHOWN_HASH_PREFIX = 8


def parse_case_ref(ref: str | int) -> int:
    """`12` or `#12` -> 12; anything else is a refusal with a hint."""
    if isinstance(ref, int):
        return ref
    match = _CASE_REF.match(ref.strip())
    if not match:
        raise Refusal(f"{ref!r} is not a case number; use the number on the card, e.g. 12 or #12.")
    return int(match.group(1))


def _actor_key(actor: Actor) -> str:
    return f"{actor.surface}:{actor.user_id}"


def _row_to_case(
    row: dict[str, Any], draft: dict[str, Any] | None, approval: dict[str, Any] | None
) -> Case:
    def ts(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return Case(
        id=row["id"],
        network=row["network"],
        mention_id=row["mention_id"],
        author_id=row["author_id"],
        department=row["department"],
        state=CaseState(row["state"]),
        intent=Intent(row["intent"]),
        sentiment=Sentiment(row["sentiment"]),
        priority=Priority(row["priority"]),
        needs_reply=bool(row["needs_reply"]),
        language=row["language"],
        route_reason=row["route_reason"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        claimed_by=row["claimed_by"],
        draft_text=draft["text"] if draft else None,
        draft_by=draft["author"] if draft else None,
        approved_hash=approval["text_hash"] if approval else None,
        approved_by=approval["approver"] if approval else None,
        note=row["note"],
        published_url=row["published_url"],
        first_response_at=ts(row["first_response_at"]),
        sla_due_at=ts(row["sla_due_at"]),
        mention_count=row["mention_count"],
        mention_at=datetime.fromisoformat(row["mention_at"]),
        publish_uncertain_since=ts(row["publish_uncertain_since"]),
        group_id=row["group_id"],
        draft_private=bool(draft["private"]) if draft else False,
        hidden_state=row["hidden_state"],
        hidden_by=row["hidden_by"],
        hidden_reason=row["hidden_reason"],
        extra={"classifier": row["classifier"]},
    )


class CareService:
    """The bot's use cases. Thread-safe: all state lives in the store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock,
        classifier: Classifier | None = None,
        ai_enabled: bool = False,
    ) -> None:
        self.ai_enabled = ai_enabled
        self.config = config
        self.store = store
        self.clock = clock
        self.classifier = classifier or OfflineClassifier()
        self.outbox = outbox.Outbox(store, clock)
        # A network's own length limit where it says so (a Mastodon instance's).
        self.reply_limits: dict[str, int] = {}
        self._delivery = threading.local()
        self.calendar = BusinessCalendar.from_config(config)
        self.pipeline = IngestPipeline(
            config,
            store,
            clock=clock,
            classifier=self.classifier,
            calendar=self.calendar,
            ai_enabled=ai_enabled,
        )

    # ---------------------------------------------------------------- ingest

    def read(self, mention: Mention) -> tuple[Classification, str, str]:
        """Classify and route without storing anything: (reading, department, reason)."""
        return self.pipeline.read(mention)

    def ingest(self, mention: Mention) -> IngestStats:
        return self.pipeline.ingest_many([mention])

    def ingest_many(self, mentions: Iterable[Mention], *, batch_size: int = 200) -> IngestStats:
        """Store each mention once, as a new case or joined to its open conversation."""
        return self.pipeline.ingest_many(mentions, batch_size=batch_size)

    def queue_card_update(
        self, db: Database, case_id: int, now: datetime, *, note: str | None = None
    ) -> None:
        """Inside a write transaction: re-render the case's card, with an optional note."""
        queue_card(db, case_id, now, note=note)

    # ---------------------------------------------------------------- reads

    def _case_row(self, db: Database, case_id: int) -> dict[str, Any]:
        rows = list(db.query("SELECT * FROM cases WHERE id = ?", [case_id]))
        if not rows:
            raise UnknownCase(case_id)
        return rows[0]

    def _load(self, db: Database, case_id: int) -> Case:
        row = self._case_row(db, case_id)
        draft = next(
            iter(
                db.query(
                    "SELECT * FROM drafts WHERE case_id = ? ORDER BY id DESC LIMIT 1", [case_id]
                )
            ),
            None,
        )
        approval = next(
            iter(
                db.query(
                    "SELECT * FROM approvals WHERE case_id = ? AND voided_at IS NULL"
                    " ORDER BY id DESC LIMIT 1",
                    [case_id],
                )
            ),
            None,
        )
        return _row_to_case(row, draft, approval)

    def get_case(self, ref: str | int) -> Case:
        return self._load(self.store.db, parse_case_ref(ref))

    def view(self, ref: str | int) -> CaseView:
        """Everything a card shows for one case."""
        case = self.get_case(ref)
        db = self.store.db
        mention = next(
            iter(
                db.query(
                    "SELECT * FROM mentions WHERE network = ? AND id = ?",
                    [case.network, case.mention_id],
                )
            )
        )
        author = next(
            iter(
                db.query(
                    "SELECT * FROM authors WHERE network = ? AND id = ?",
                    [case.network, case.author_id],
                )
            )
        )
        thread = [
            ThreadPost(r["id"], r["text"], datetime.fromisoformat(r["created_at"]), r["url"])
            for r in db.query(
                "SELECT * FROM mentions WHERE case_id = ? AND id != ? ORDER BY created_at",
                [case.id, case.mention_id],
            )
        ]
        dept = self.config.department(case.department)
        tags, saved, managers = desk.card_extras(self.config, db, case)
        return CaseView(
            case=case,
            department_name=dept.name if dept else case.department,
            author=AuthorView(
                handle=author["handle"],
                name=author["name"],
                followers=author["followers"],
                verified=bool(author["verified"]),
            ),
            text=mention["text"],
            url=mention["url"],
            earlier=self.earlier_contacts(case),
            thread=thread,
            suggestions=[
                r["text"]
                for r in db.query(
                    "SELECT text FROM suggestions WHERE case_id = ? ORDER BY position", [case.id]
                )
            ],
            paused=self.is_paused(),
            grouped=[
                GroupedCase(r["id"], r["handle"], r["state"])
                for r in db.query(
                    "SELECT c.id, a.handle, c.state FROM cases c JOIN authors a"
                    " ON a.network = c.network AND a.id = c.author_id"
                    " WHERE c.group_id = ? ORDER BY c.id",
                    [case.id],
                )
            ],
            tags=tags,
            saved_replies=saved,
            vip_managers=managers,
        )

    def earlier_contacts(self, case: Case, limit: int = 5) -> list[EarlierContact]:
        """The author's previous cases, newest first, so nobody asks them to repeat themselves."""
        rows = self.store.query(
            """
            SELECT c.id, c.state, c.intent, c.mention_at, m.text FROM cases c
            JOIN mentions m ON m.network = c.network AND m.id = c.mention_id
            WHERE c.network = ? AND c.author_id = ? AND c.id < ?
            ORDER BY c.id DESC LIMIT ?
            """,
            [case.network, case.author_id, case.id, limit],
        )
        return [
            EarlierContact(
                case_id=r["id"],
                state=r["state"],
                intent=r["intent"],
                created_at=datetime.fromisoformat(r["mention_at"]),
                text=r["text"],
            )
            for r in rows
        ]

    def departments_of(self, actor: Actor, action: str) -> list[str]:
        """The departments whose cases `actor` may see: all for admins, else those they have
        a role in. Someone with no role anywhere is refused (audited as `action`)."""
        if is_admin(self.config, actor):
            return [d.id for d in self.config.departments]
        mine = [
            d.id
            for d in self.config.departments
            if role_of(self.config, actor, d.id) >= Role.MEMBER
        ]
        if not mine:
            refusal = NotAllowed(
                "Only members and managers of a department (or admins) can see its cases."
            )
            self._audit_refusal(actor, action, refusal)
            raise refusal
        return mine

    def queue(self, department: str | None = None, *, actor: Actor | None = None) -> list[Case]:
        """Open cases, oldest first; one department or all (for `actor`: all of theirs)."""
        where = "state NOT IN ('published', 'dismissed')"
        params: list[Any] = []
        visible = self.departments_of(actor, "queue") if actor is not None else None
        refusal: Refusal | None = None
        if department and self.config.department(department) is None:
            known = ", ".join(d.id for d in self.config.departments)
            refusal = Refusal(
                f"Unknown department {department!r}; departments: {known}.",
                code="unknown_department",
            )
        elif department and visible is not None and department not in visible:
            refusal = NotAllowed(f"Only members and managers of {department} can see its cases.")
        if refusal is not None:
            if actor is not None:
                self._audit_refusal(actor, "queue", refusal)
            raise refusal
        wanted = [department] if department else visible
        if wanted is not None:
            where += f" AND department IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        ids = [
            r[0]
            for r in self.store.db.execute(
                f"SELECT id FROM cases WHERE {where} ORDER BY id", params
            )
        ]
        return [self.get_case(i) for i in ids]

    def audit_trail(self, case_id: int) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM audit WHERE case_id = ? ORDER BY seq", [case_id])

    # ---------------------------------------------------------------- actions

    def _act(
        self,
        actor: Actor,
        action: str,
        ref: str | int,
        work: Callable[[Database, Case, datetime], T],
    ) -> T:
        """Run one action atomically; audit refusals too (then re-raise them)."""
        now = self.clock.now()
        case_id: int | None = None
        try:
            case_id = parse_case_ref(ref)
            with self.store.write() as db:
                self._mark_delivered(db, now)
                case = self._load(db, case_id)
                return work(db, case, now)
        except Refusal as refusal:
            self._audit_refusal(
                actor,
                action,
                refusal,
                case_id=None if isinstance(refusal, UnknownCase) else case_id,
                ref=str(ref),
            )
            raise

    def _audit_refusal(
        self,
        actor: Actor,
        action: str,
        refusal: Refusal,
        *,
        case_id: int | None = None,
        ref: str | None = None,
    ) -> None:
        detail = {"reason": str(refusal)} | ({"ref": ref[:40]} if ref is not None else {})
        with self.store.write() as db:
            audit.append(
                db,
                at=self.clock.now(),
                actor=_actor_key(actor),
                action=action,
                case_id=case_id,
                outcome=f"refused:{refusal.code}",
                detail=detail,
            )

    def _transition(
        self,
        db: Database,
        case: Case,
        actor: Actor,
        action: Action,
        now: datetime,
        *,
        sets: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        text: str | None = None,
        note: str | None = None,
    ) -> None:
        target = advance(case.state, action)
        columns = {"state": target.value, "updated_at": now.isoformat(), **(sets or {})}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(f"UPDATE cases SET {assignments} WHERE id = ?", [*columns.values(), case.id])
        audit.append(
            db,
            at=now,
            actor=_actor_key(actor),
            action=action.value,
            case_id=case.id,
            detail={"from": case.state.value, "to": target.value, **(detail or {})},
            text_hash=text_hash(text) if text is not None else None,
        )
        queue_card(db, case.id, now, note=note)

    def claim(self, actor: Actor, ref: str | int) -> Case:
        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.CLAIM, case.department)
            if case.state is CaseState.CLAIMED and self.config.same_person(
                case.claimed_by, actor.user_id
            ):
                raise Refusal(f"You have already claimed case #{case.id}.", code="no_change")
            if case.state is CaseState.CLAIMED and case.claimed_by:
                raise InvalidTransition(
                    f"Case #{case.id} is already claimed by <@{case.claimed_by}>."
                )
            return self._claim_in(db, case, actor, now)  # refused unless the case is new

        return self._act(actor, "claim", ref, work)

    def _claim_in(self, db: Database, case: Case, actor: Actor, now: datetime) -> Case:
        if case.group_id is not None:
            # A near-duplicate someone takes up leaves its group for a card of its own, so
            # its draft is on screen before anyone approves it.
            db.execute(
                "UPDATE cases SET group_id = NULL, left_group_id = ? WHERE id = ?",
                (case.group_id, case.id),
            )
            queue_card(db, case.group_id, now, note=f"#{case.id} now has its own card")
        self._transition(
            db,
            case,
            actor,
            Action.CLAIM,
            now,
            sets={"claimed_by": actor.user_id, "claimed_at": now.isoformat()},
            note=f"Claimed by <@{actor.user_id}>",
        )
        return self._load(db, case.id)

    def set_draft(
        self,
        actor: Actor,
        ref: str | int,
        text: str,
        *,
        source: str = "human",
        private: bool | None = None,
    ) -> Case:
        """Write or replace the reply draft. Voids any approval of other words or kind.

        `private`: True for a private reply (Messenger / Instagram Direct), False for a
        public one, None to keep the kind of the current draft (public if none)."""

        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.DRAFT, case.department)
            kind = case.draft_private if private is None else private
            if kind:
                self._refuse_private_reply(db, case, now)
            if case.state is CaseState.NEW:
                # Drafting an unclaimed case claims it: two people must never answer one person.
                case = self._claim_in(db, case, actor, now)
            self._require_owner_or_manager(case, actor)
            self._refuse_while_publishing(db, case)
            final = self._checked_reply(db, case, text, private=kind)
            return self._write_draft(db, case, actor, final, source, now, private=kind)

        return self._act(actor, "reply_private" if private else "draft", ref, work)

    def check_may_draft(self, actor: Actor, ref: str | int, *, private: bool = False) -> Case:
        """Refuse now (before a modal opens) if the actor could not save a draft
        (`private`: a private reply)."""

        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.DRAFT, case.department)
            if private:
                self._refuse_private_reply(db, case, now)
            if case.state is not CaseState.NEW:
                advance(case.state, Action.DRAFT)
                self._require_owner_or_manager(case, actor)
                self._refuse_while_publishing(db, case)
            return case

        return self._act(actor, "reply_private" if private else "draft", ref, work)

    def _refuse_private_reply(self, db: Database, case: Case, now: datetime) -> None:
        """Meta's rules: Facebook/Instagram only, one per comment, within 7 days."""
        problem = private_reply_problem(db, case.network, self._reply_target(db, case), now)
        if problem is not None:
            raise Refusal(problem[1], code=problem[0])

    @staticmethod
    def _refuse_while_uncertain(case: Case) -> None:
        """A reply may already be out: any change now could mean a second public reply."""
        if case.publish_uncertain:
            network = network_name(case.network)
            raise Refusal(
                f"A reply to case #{case.id} may already be on {network}: the answer to a"
                f" publish attempt was lost. socialcare is checking {network} and will record"
                " the reply it finds or post the approved one; until then the case cannot be"
                " edited, dismissed, reassigned or approved again. If the network will never"
                f" tell, an admin can settle it: `settle {case.id} published URL` or"
                f" `settle {case.id} not-posted`.",
                code="uncertain",
            )

    @classmethod
    def _refuse_while_publishing(cls, db: Database, case: Case) -> None:
        """An attempt may be on its way to X: changing the words now could mean two replies."""
        cls._refuse_while_uncertain(case)
        in_flight = db.execute(
            "SELECT 1 FROM outbox WHERE kind = 'publish' AND case_id = ?"
            " AND (state = 'sending' OR (state = 'pending' AND attempts > 0))",
            (case.id,),
        ).fetchone()
        if in_flight:
            raise Refusal(
                f"The reply of case #{case.id} is being published right now; it cannot be"
                " changed. If publishing fails, edit it then.",
                code="publishing",
            )

    def _write_draft(
        self,
        db: Database,
        case: Case,
        actor: Actor,
        text: str,
        source: str,
        now: datetime,
        *,
        private: bool = False,
    ) -> Case:
        same_kind = case.draft_private == private
        if case.draft_text == text and same_kind and case.state is not CaseState.FAILED:
            raise Refusal(
                f"The draft of case #{case.id} already says exactly that; nothing changed.",
                code="no_change",
            )
        draft_id = db.execute(
            "INSERT INTO drafts (case_id, text, text_hash, author, source, created_at, private)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                case.id,
                text,
                reply_hash(text, private=private),
                actor.user_id,
                source,
                now.isoformat(),
                int(private),
            ),
        ).fetchone()[0]
        # Other words, or the same words sent another way (public <-> private): an
        # approval was for what the approver saw, so it no longer stands.
        voided = db.execute(
            "UPDATE approvals SET voided_at = ?, void_reason = ?"
            " WHERE case_id = ? AND voided_at IS NULL",
            (now.isoformat(), "draft edited" if same_kind else "reply kind changed", case.id),
        ).rowcount
        note = f"Draft {'edited' if case.draft_text else 'written'} by <@{actor.user_id}>"
        if private:
            note = (
                f"Private reply {'edited' if case.draft_private else 'drafted'} by"
                f" <@{actor.user_id}>: it will be sent as a {private_channel(case.network)}"
                " message, not posted publicly"
            )
        elif case.draft_private:
            note = f"Changed to a public reply by <@{actor.user_id}>"
        if voided:
            note += " (the earlier approval no longer applies)"
        if case.state is CaseState.CLAIMED:
            db.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now.isoformat(), case.id))
            audit.append(
                db,
                at=now,
                actor=_actor_key(actor),
                action=Action.DRAFT.value,
                case_id=case.id,
                detail={"draft_id": draft_id, "source": source, "private": private},
                text_hash=text_hash(text),
            )
            queue_card(db, case.id, now, note=note)
        else:
            self._transition(
                db,
                case,
                actor,
                Action.DRAFT,
                now,
                detail={
                    "draft_id": draft_id,
                    "source": source,
                    "approval_voided": bool(voided),
                    "private": private,
                },
                text=text,
                note=note,
            )
        return self._load(db, case.id)

    def _require_owner_or_manager(self, case: Case, actor: Actor) -> None:
        if (
            case.claimed_by
            and not self.config.same_person(case.claimed_by, actor.user_id)
            and role_of(self.config, actor, case.department) < Role.MANAGER
        ):
            raise NotAllowed(
                f"Case #{case.id} is claimed by <@{case.claimed_by}>;"
                " only they or a manager can change its reply."
            )

    def _checked_reply(self, db: Database, case: Case, text: str, *, private: bool = False) -> str:
        handle = db.execute(
            "SELECT handle FROM authors WHERE network = ? AND id = ?",
            (case.network, case.author_id),
        ).fetchone()[0]
        # Line ends as typed on any surface; other control characters are refused below.
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        # A private reply is a message to the person: no @handle to address them.
        addressed = f"@{handle}".lower() in text.lower()
        if text and not private and starts_with_handle(case.network) and not addressed:
            text = f"@{handle} {text}"
        problems = check_reply(
            text,
            author_handle=handle,
            forbidden=self.config.brand.forbidden_phrases,
            network=case.network,
            limit=self.reply_limits.get(case.network),
        )
        too_long = private_reply_length_problem(case.network, text) if private else None
        problems += [too_long] if too_long else []
        if problems:
            raise Refusal(
                "The reply cannot be used: " + "; ".join(problems) + ".", code="bad_reply"
            )
        return text

    def submit(self, actor: Actor, ref: str | int) -> Case:
        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.SUBMIT, case.department)
            self._refuse_while_uncertain(case)
            if case.state is CaseState.AWAITING_APPROVAL:
                raise Refusal(f"Case #{case.id} is already waiting for approval.", code="no_change")
            self._require_owner_or_manager(case, actor)
            if case.state is CaseState.CLAIMED and not case.draft_text:
                raise Refusal(f"Case #{case.id} has no reply draft to submit yet.", code="no_draft")
            self._transition(
                db,
                case,
                actor,
                Action.SUBMIT,
                now,
                text=case.draft_text,
                note=f"Reply submitted for approval by <@{actor.user_id}>",
            )
            return self._load(db, case.id)

        return self._act(actor, "submit", ref, work)

    def reply(self, actor: Actor, ref: str | int, text: str, *, private: bool = False) -> Case:
        """`/care reply N TEXT` (`reply-private`: `private`): set the draft (claiming if
        needed) and submit it."""
        try:
            self.set_draft(actor, ref, text, private=private)
        except Refusal as refusal:
            if refusal.code != "no_change":
                raise
            # The draft already says this (and the refusal is audited): submit it.
        return self.submit(actor, ref)

    def use_suggestion(self, actor: Actor, ref: str | int, position: int) -> Case:
        def work(db: Database, case: Case, now: datetime) -> str:
            row = db.execute(
                "SELECT text FROM suggestions WHERE case_id = ? AND position = ?",
                (case.id, position),
            ).fetchone()
            if row is None:
                raise Refusal(
                    f"Case #{case.id} has no suggested reply {position}.", code="no_suggestion"
                )
            return str(row[0])

        text = self._act(actor, "draft", ref, work)
        return self.set_draft(actor, ref, text, source=f"suggestion:{position}")

    def _check_may_approve(self, case: Case, actor: Actor) -> str:
        """Refuse unless `actor` may approve the case's draft now; the draft's hash."""
        self._refuse_while_uncertain(case)
        advance(case.state, Action.APPROVE)
        assert case.draft_text is not None  # awaiting_approval always has a draft
        if case.group_id is not None:
            # A near-duplicate shown only as a line on another card: its words were never
            # on screen. (Claiming takes a case out of its group, so this is a safety net.)
            raise Refusal(
                f"The reply of case #{case.id} is not shown on any card yet; claim the case"
                " to give it a card of its own, then review it there.",
                code="not_shown",
            )
        if (
            self.config.same_person(case.draft_by, actor.user_id)
            and not self.config.publish.allow_self_approval
        ):
            raise NotAllowed("You wrote this reply, so another manager has to approve it.")
        return str(case.draft_hash)

    def approval_prompt(self, actor: Actor, ref: str | int) -> Case:
        """What `approve N` shows before it approves: the case, if `actor` may approve it now.

        Changes nothing; a refusal is audited like any other.
        """

        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.APPROVE, case.department)
            self._check_may_approve(case, actor)
            if case.draft_private:
                self._refuse_private_reply(db, case, now)
            return case

        return self._act(actor, "approve", ref, work)

    def approve(self, actor: Actor, ref: str | int, *, expected_hash: str | None = None) -> Case:
        """Approve the exact current draft and queue it for publishing.

        `expected_hash` is the hash of the words the approver saw (a button carries all of
        it, a typed command a prefix of at least MIN_HASH_PREFIX characters): a draft that
        changed since is refused. Surfaces always pass it; None is for scripts and tests.
        """

        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.APPROVE, case.department)
            if case.state in {CaseState.APPROVED, CaseState.PUBLISHED} and self.config.same_person(
                case.approved_by, actor.user_id
            ):
                raise Refusal(
                    f"You already approved case #{case.id}; it is {case.state.value}.",
                    code="no_change",
                )
            current = self._check_may_approve(case, actor)
            if case.draft_private:
                self._refuse_private_reply(db, case, now)
            if expected_hash is not None:
                seen = expected_hash.strip().lower()
                if len(seen) < MIN_HASH_PREFIX or not re.fullmatch(r"[0-9a-f]+", seen):
                    raise Refusal(
                        f"{expected_hash!r} is not the code of a reply; use the"
                        f" {MIN_HASH_PREFIX}+ character code `approve {case.id}` shows.",
                        code="usage",
                    )
                if not current.startswith(seen):
                    raise Refusal(
                        f"The reply on case #{case.id} changed since you saw it; review it again.",
                        code="stale",
                    )
            draft_id = db.execute(
                "SELECT id FROM drafts WHERE case_id = ? ORDER BY id DESC LIMIT 1", (case.id,)
            ).fetchone()[0]
            approval_id = db.execute(
                "INSERT INTO approvals (case_id, draft_id, text_hash, approver, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (case.id, draft_id, current, actor.user_id, now.isoformat()),
            ).fetchone()[0]
            self._transition(
                db,
                case,
                actor,
                Action.APPROVE,
                now,
                sets={"note": None},
                detail={"approval_id": approval_id, "private": case.draft_private},
                text=case.draft_text,
                note=f"Approved by <@{actor.user_id}>"
                + (
                    f" (a private {private_channel(case.network)} message)"
                    if case.draft_private
                    else ""
                ),
            )
            self._queue_publish(db, case, approval_id, now)
            return self._load(db, case.id)

        return self._act(actor, "approve", ref, work)

    def _queue_publish(
        self, db: Database, case: Case, approval_id: int | None, now: datetime
    ) -> None:
        outbox.enqueue(
            db,
            kind=PUBLISH,
            now=now,
            case_id=case.id,
            # Replies to different people need no order: one slow retry holds up no one.
            channel=f"publish:{case.network}:{case.id}",
            payload={"approval_id": approval_id, "in_reply_to_id": self._reply_target(db, case)},
            dedupe_key=f"publish:{case.id}:{approval_id}",
        )

    @staticmethod
    def _reply_target(db: Database, case: Case) -> str:
        """The post a reply answers, fixed at approval: the conversation's latest mention."""
        row = db.execute(
            "SELECT id FROM mentions WHERE case_id = ? ORDER BY created_at DESC, ingested_at DESC"
            " LIMIT 1",
            (case.id,),
        ).fetchone()
        return str(row[0]) if row else case.mention_id

    def reject(self, actor: Actor, ref: str | int, reason: str) -> Case:
        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.REJECT, case.department)
            self._refuse_while_uncertain(case)
            reason_ = _required_reason(reason, "reject")
            self._transition(
                db,
                case,
                actor,
                Action.REJECT,
                now,
                sets={"note": reason_},
                detail={"reason": reason_},
                note=f"Rejected by <@{actor.user_id}>: {reason_}",
            )
            return self._load(db, case.id)

        return self._act(actor, "reject", ref, work)

    def dismiss(self, actor: Actor, ref: str | int, reason_text: str) -> Case:
        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.DISMISS, case.department)
            self._refuse_while_uncertain(case)
            reason = _required_reason(reason_text, "dismiss")
            # Dismissing the first case of a group dismisses the copies nobody has taken
            # up yet (a spam or copy-paste campaign is dismissed in one go).
            copies = [
                self._load(db, int(r[0]))
                for r in db.execute(
                    "SELECT id FROM cases WHERE group_id = ? AND state = 'new'", (case.id,)
                )
            ]
            also = f" (and {len(copies)} similar)" if copies else ""
            self._transition(
                db,
                case,
                actor,
                Action.DISMISS,
                now,
                sets={"note": reason, "closed_at": now.isoformat()},
                detail={"reason": reason, "with_group": [c.id for c in copies]},
                note=f"Dismissed by <@{actor.user_id}>: {reason}{also}",
            )
            for copy in copies:
                self._transition(
                    db,
                    copy,
                    actor,
                    Action.DISMISS,
                    now,
                    sets={"note": reason, "closed_at": now.isoformat()},
                    detail={"reason": reason, "with_case": case.id},
                )
            return self._load(db, case.id)

        return self._act(actor, "dismiss", ref, work)

    def reassign(self, actor: Actor, ref: str | int, department: str) -> Case:
        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.REASSIGN, case.department)
            self._refuse_while_uncertain(case)
            target = self.config.department(department)
            if target is None:
                known = ", ".join(d.id for d in self.config.departments)
                raise Refusal(
                    f"Unknown department {department!r}; departments: {known}.",
                    code="unknown_department",
                )
            if case.department == target.id:
                raise Refusal(f"Case #{case.id} is already with {target.name}.", code="no_change")
            old = case.department
            # The old card says where the case went; the new department gets a fresh card.
            refs = {
                r[0]: [r[1], r[2]]
                for r in db.execute(
                    "SELECT surface, channel, message_id FROM chat_messages WHERE case_id = ?",
                    (case.id,),
                )
            }
            outbox.enqueue(
                db,
                kind=NOTE,
                now=now,
                case_id=case.id,
                channel=old,
                # The old card's address travels with the note: the case gets a new card.
                payload={
                    "text": f"Reassigned to {target.name} by <@{actor.user_id}>",
                    "refs": refs,
                },
            )
            db.execute("DELETE FROM chat_messages WHERE case_id = ?", (case.id,))
            # A card still queued goes to the new department's channel, as a new card.
            db.execute(
                "UPDATE outbox SET channel = ? WHERE kind = 'card' AND case_id = ?"
                " AND state = 'pending'",
                (target.id, case.id),
            )
            # Leaving the group (or dissolving it): each case left gets its own card.
            members = [
                r[0] for r in db.execute("SELECT id FROM cases WHERE group_id = ?", (case.id,))
            ]
            db.execute(
                "UPDATE cases SET group_id = NULL WHERE id = ? OR group_id = ?", (case.id, case.id)
            )
            for member in members:
                queue_card(db, member, now)
            self._transition(
                db,
                case,
                actor,
                Action.REASSIGN,
                now,
                sets={
                    "department": target.id,
                    "claimed_by": None,
                    "route_reason": f"reassigned by <@{actor.user_id}>",
                },
                detail={"from_department": old, "to_department": target.id},
                note=f"Reassigned from another department by <@{actor.user_id}>",
            )
            return self._load(db, case.id)

        return self._act(actor, "reassign", ref, work)

    def retry(self, actor: Actor, ref: str | int) -> Case:
        """Try a failed publish again, with the same approved text."""

        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, Action.RETRY, case.department)
            self._refuse_while_uncertain(case)
            advance(case.state, Action.RETRY)
            if (
                case.approved_hash is None
                or case.draft_text is None
                or case.draft_hash != case.approved_hash
            ):
                raise Refusal(
                    f"Case #{case.id} has no approved reply to retry;"
                    " submit it for approval again.",
                    code="no_approval",
                )
            approval_id = db.execute(
                "SELECT id FROM approvals WHERE case_id = ? AND voided_at IS NULL"
                " ORDER BY id DESC LIMIT 1",
                (case.id,),
            ).fetchone()[0]
            attempt = db.execute(
                "SELECT count(*) FROM outbox WHERE kind = 'publish' AND case_id = ?", (case.id,)
            ).fetchone()[0]
            self._transition(
                db,
                case,
                actor,
                Action.RETRY,
                now,
                detail={"approval_id": approval_id},
                note=f"Publishing retried by <@{actor.user_id}>",
            )
            outbox.enqueue(
                db,
                kind=PUBLISH,
                now=now,
                case_id=case.id,
                channel=f"publish:{case.network}:{case.id}",
                payload={
                    "approval_id": approval_id,
                    "retry": attempt,
                    "in_reply_to_id": self._reply_target(db, case),
                },
                dedupe_key=f"publish:{case.id}:{approval_id}:retry{attempt}",
            )
            return self._load(db, case.id)

        return self._act(actor, "retry", ref, work)

    # ---------------------------------------------------------------- moderation

    def hide(self, actor: Actor, ref: str | int, reason: str) -> Case:
        """Managers: hide the case's comment on its network (through the outbox, so an
        outage retries). The case stays as it is: hiding answers nobody."""
        return self._set_hidden(actor, ref, True, reason)

    def unhide(self, actor: Actor, ref: str | int) -> Case:
        """Managers: show a hidden comment again."""
        return self._set_hidden(actor, ref, False, "")

    def check_may_hide(self, actor: Actor, ref: str | int) -> Case:
        """Refuse now (before a form asks for the reason) if `actor` could not hide it."""
        return self._set_hidden(actor, ref, True, "", check_only=True)

    def _set_hidden(
        self, actor: Actor, ref: str | int, hidden: bool, reason: str, *, check_only: bool = False
    ) -> Case:
        action = Action.HIDE if hidden else Action.UNHIDE

        def work(db: Database, case: Case, now: datetime) -> Case:
            authorize(self.config, actor, action, case.department)
            problem = not_meta_reason(case.network, "Hiding a comment") or elsewhere_reason(
                case.mention_id, "Hiding a comment"
            )
            if problem:
                raise Refusal(problem, code="wrong_network")
            network = network_name(case.network)
            comments = case_comments(db, case.id, case.network)
            if (
                hidden
                and case.hidden_state in {"hiding", "hidden"}
                # A comment that joined the case since (the same person again) may be hid.
                and set(comments) <= last_hide_request(db, case.id)
            ):
                raise Refusal(
                    f"The comment of case #{case.id} is already {case.hidden_state} on {network}.",
                    code="no_change",
                )
            if not hidden and case.hidden_state in {None, "unhiding"}:
                raise Refusal(
                    f"The comment of case #{case.id} is not hidden on {network}.",
                    code="no_change",
                )
            if check_only:
                return case
            why = _required_reason(reason, "hide") if hidden else None
            db.execute(
                "UPDATE cases SET hidden_state = ?, hidden_by = ?, hidden_reason = ?,"
                " updated_at = ? WHERE id = ?",
                (
                    "hiding" if hidden else "unhiding",
                    actor.user_id,
                    why if hidden else case.hidden_reason,
                    now.isoformat(),
                    case.id,
                ),
            )
            audit.append(
                db,
                at=now,
                actor=_actor_key(actor),
                action=action.value,
                case_id=case.id,
                detail={"comment_id": case.mention_id, "network": case.network}
                | ({"comment_ids": comments} if len(comments) > 1 else {})
                | ({"reason": why} if why else {}),
            )
            outbox.enqueue(
                db,
                kind=MODERATE,
                now=now,
                case_id=case.id,
                # One comment's hide and unhide go out in the order they were asked for.
                channel=f"moderate:{case.network}:{case.mention_id}",
                payload={"comment_id": case.mention_id, "comment_ids": comments, "hidden": hidden},
            )
            queue_card(
                db,
                case.id,
                now,
                note=f"Hiding the comment on {network} (by <@{actor.user_id}>: {why})"
                if hidden
                else f"Showing the comment on {network} again (by <@{actor.user_id}>)",
            )
            return self._load(db, case.id)

        return self._act(actor, action.value, ref, work)

    # ---------------------------------------------------------------- source cursors

    def cursor(self, source: str) -> str | None:
        value = self.store.scalar("SELECT value FROM cursors WHERE source = ?", [source])
        return str(value) if value is not None else None

    def set_cursor(self, source: str, value: str) -> None:
        with self.store.write() as db:
            db.execute(
                "INSERT INTO cursors (source, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (source, value, self.clock.now().isoformat()),
            )

    # ---------------------------------------------------------------- chat references

    def remember(self, surface: str, key: str, data: dict[str, Any]) -> None:
        """Keep where a surface's conversation lives (e.g. a Teams channel's service URL
        and tenant), merged into what was known, for proactive posts later."""
        self.remember_all(surface, {key: data})

    def remember_all(self, surface: str, entries: dict[str, dict[str, Any]]) -> None:
        """`remember` for several keys; writes (one transaction) only what changed, so
        every inbound activity costs a read, not a write."""
        known = {key: self.reference(surface, key) or {} for key in entries}
        changed = {
            key: {**known[key], **data}
            for key, data in entries.items()
            if {**known[key], **data} != known[key]
        }
        if not changed:
            return
        with self.store.write() as db:
            for key, merged in changed.items():
                db.execute(
                    "INSERT INTO chat_references (surface, key, data, updated_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (surface, key) DO UPDATE SET"
                    " data = excluded.data, updated_at = excluded.updated_at",
                    (surface, key, json.dumps(merged), self.clock.now().isoformat()),
                )

    def reference(self, surface: str, key: str) -> dict[str, Any] | None:
        value = self.store.scalar(
            "SELECT data FROM chat_references WHERE surface = ? AND key = ?", [surface, key]
        )
        return dict(json.loads(value)) if value else None

    def serve_surfaces(self, surfaces: list[str]) -> None:
        """Record which chat surfaces the running bot serves: chat items are then queued
        once per surface (by any process: `ingest` too)."""
        with self.store.write() as db:
            db.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (outbox.SURFACES_KEY, json.dumps(surfaces), self.clock.now().isoformat()),
            )
            # Items queued for a surface no longer served would wait forever.
            marks = ",".join("?" for _ in surfaces) or "NULL"
            db.execute(
                f"UPDATE outbox SET state = 'done', result = '{{\"skipped\": \"surface off\"}}'"
                f" WHERE state = 'pending' AND surface IS NOT NULL AND surface NOT IN ({marks})",
                surfaces,
            )

    def install_id(self) -> str:
        """A random id of this database, made once: it keeps publish attempt keys unique
        across databases (a backup restored, a staging copy on the same brand account)."""
        value = self.store.scalar("SELECT value FROM settings WHERE key = 'install_id'")
        if value:
            return str(value)
        with self.store.write() as db:
            db.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES ('install_id', ?, ?)"
                " ON CONFLICT (key) DO NOTHING",
                (uuid.uuid4().hex[:12], self.clock.now().isoformat()),
            )
        return str(self.store.scalar("SELECT value FROM settings WHERE key = 'install_id'"))

    # ---------------------------------------------------------------- leases

    def hold_lease(self, key: str, owner: str, now: datetime, *, ttl: timedelta) -> bool:
        """Take or renew a named lease (one scheduler, one poller per source, across all
        processes on this database); False while another owner holds it unexpired."""
        with self.store.write() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            if row:
                lease = json.loads(row[0])
                if lease["owner"] != owner and datetime.fromisoformat(lease["until"]) > now:
                    return False
            value = json.dumps({"owner": owner, "until": (now + ttl).isoformat()})
            db.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, value, now.isoformat()),
            )
        return True

    # ---------------------------------------------------------------- inbound dedupe

    @contextmanager
    def delivery(self, key: str | None) -> Iterator[None]:
        """Within this block (one thread), the next action records `key` (a platform's
        delivery id) in its own transaction: a retried delivery then raises
        AlreadyDelivered, and a crash can never record the delivery without the action."""
        self._delivery.key = key
        try:
            yield
        finally:
            self._delivery.key = None

    def _mark_delivered(self, db: Database, now: datetime) -> None:
        key = getattr(self._delivery, "key", None)
        if not key:
            return
        self._delivery.key = None  # one action per delivery
        added = db.execute(
            "INSERT INTO inbound_seen (key, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (key[:200], now.isoformat()),
        ).rowcount
        if not added:
            raise AlreadyDelivered(key)

    def first_delivery(self, key: str, *, keep_hours: int = 24) -> bool:
        """True the first time `key` (an event or trigger id) is seen; False for a retry."""
        now = self.clock.now()
        with self.store.write() as db:
            db.execute(
                "DELETE FROM inbound_seen WHERE seen_at < ?",
                ((now - timedelta(hours=keep_hours)).isoformat(),),
            )
            cursor = db.execute(
                "INSERT INTO inbound_seen (key, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (key[:200], now.isoformat()),
            )
            return bool(cursor.rowcount)

    # ---------------------------------------------------------------- kill switch

    def is_paused(self) -> bool:
        return bool(
            self.store.scalar("SELECT value FROM settings WHERE key = ?", [PAUSED_KEY]) == "1"
        )

    def set_paused(self, actor: Actor, paused: bool) -> None:
        """Admins only: stop (or restart) all publishing. Queued replies wait."""
        now = self.clock.now()
        action = "pause" if paused else "resume"
        refusal: Refusal | None = None
        with self.store.write() as db:
            if not is_admin(self.config, actor):
                refusal = NotAllowed(f"Only admins can {action} publishing.")
            elif self.is_paused() == paused:
                refusal = Refusal(
                    f"Publishing is already {'paused' if paused else 'running'}.",
                    code="no_change",
                )
            else:
                db.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                    " updated_at = excluded.updated_at",
                    (PAUSED_KEY, "1" if paused else "0", now.isoformat()),
                )
                audit.append(db, at=now, actor=_actor_key(actor), action=action)
        if refusal is not None:
            self._audit_refusal(actor, action, refusal)
            raise refusal

    # ---------------------------------------------------------------- publishing results

    def begin_publish_attempt(self, case_id: int) -> None:
        """Committed before the network call: from here on a reply may be out."""
        with self.store.write() as db:
            db.execute(
                "UPDATE cases SET publish_uncertain_since = coalesce(publish_uncertain_since, ?)"
                " WHERE id = ?",
                (self.clock.now().isoformat(), case_id),
            )

    def record_published(
        self,
        item_id: int,
        case_id: int,
        reply: PublishedReply,
        *,
        found: bool = False,
        private_to: str | None = None,
    ) -> None:
        """The reply is out: posted now, or `found` on the network by a check after an
        attempt whose answer was lost. Either way it is recorded the same way.
        `private_to`: it was a private reply to that comment (Meta allows one each)."""
        now = self.clock.now()
        with self.store.write() as db:
            case = self._load(db, case_id)
            self.outbox.finish(db, item_id, {"post_id": reply.post_id, "url": reply.url})
            if private_to is not None:
                self._record_private_reply(db, case, private_to, reply.post_id, now)
            db.execute("UPDATE cases SET publish_uncertain_since = NULL WHERE id = ?", (case_id,))
            if case.state is not CaseState.APPROVED:
                # Never expected (edits are refused while publishing), but a reply that is
                # out must never go unrecorded.
                log.error("case #%s was %s when its reply was published", case_id, case.state)
                audit.append(
                    db,
                    at=now,
                    actor=_actor_key(SYSTEM_ACTOR),
                    action="publish_ok",
                    case_id=case_id,
                    outcome="late",
                    detail={"post_id": reply.post_id, "url": reply.url, "state": case.state},
                )
                return
            self._transition(
                db,
                case,
                SYSTEM_ACTOR,
                Action.PUBLISH_OK,
                now,
                sets={
                    "published_id": reply.post_id,
                    "published_url": reply.url,
                    "first_response_at": case.first_response_at.isoformat()
                    if case.first_response_at
                    else now.isoformat(),
                    "closed_at": now.isoformat(),
                    "note": None,
                },
                detail={
                    "post_id": reply.post_id,
                    "url": reply.url,
                    "outbox_id": item_id,
                    "found_by_check": found,
                    "private": private_to is not None,
                },
                text=case.draft_text,
                note=(
                    f"Replied privately ({private_channel(case.network)}): {reply.url}"
                    if private_to is not None
                    else f"Published: {reply.url}"
                )
                + (
                    " (found on the network by a check after an unanswered attempt)"
                    if found
                    else ""
                ),
            )

    def record_outcome_unknown(
        self, item_id: int, case_id: int, reason: str, delay_seconds: float, *, first: bool
    ) -> None:
        """A reply may be out but nobody knows: check again later, change nothing meanwhile.

        Never a failure: a failed case invites a rewrite, and a rewrite is a second reply.
        The `first` time is audited and noted on the card; later checks only reschedule.
        """
        now = self.clock.now()
        self.outbox.retry_later(item_id, reason, delay_seconds)
        if not first:
            return
        with self.store.write() as db:
            case = self._load(db, case_id)
            network = network_name(case.network)
            audit.append(
                db,
                at=now,
                actor=_actor_key(SYSTEM_ACTOR),
                action="publish_uncertain",
                case_id=case_id,
                detail={"reason": reason, "outbox_id": item_id},
                text_hash=text_hash(case.draft_text) if case.draft_text else None,
            )
            queue_card(
                db,
                case_id,
                now,
                note=f"No clear answer from {network} ({reason}). The reply may be out:"
                f" checking {network} before anything is posted again.",
            )

    def record_not_posted(self, item_id: int, case_id: int, reason: str, delay: float) -> None:
        """Refused for now (a rate limit) and nothing of this case is out: try again later."""
        with self.store.write() as db:
            if self.outbox.requeue(db, item_id, reason, delay):
                db.execute(
                    "UPDATE cases SET publish_uncertain_since = NULL WHERE id = ?", (case_id,)
                )

    def record_failed(self, item_id: int, case_id: int, reason: str) -> None:
        """Refused for good, and nothing of this case is out: the case fails, retryable."""
        now = self.clock.now()
        with self.store.write() as db:
            if not self.outbox.fail(db, item_id, reason):
                return  # another process took the item over; its outcome is its own
            db.execute("UPDATE cases SET publish_uncertain_since = NULL WHERE id = ?", (case_id,))
            case = self._load(db, case_id)
            if case.state is not CaseState.APPROVED:
                return
            self._transition(
                db,
                case,
                SYSTEM_ACTOR,
                Action.PUBLISH_FAILED,
                now,
                sets={"note": f"Publishing failed: {reason}"},
                detail={"reason": reason, "outbox_id": item_id},
                note=f"Publishing failed: {reason}. Use Retry to try again.",
            )

    def settle(self, actor: Actor, ref: str | int, outcome: str, url: str = "") -> Case:
        """Admins only: settle by hand a publish whose outcome socialcare cannot learn
        (the post was deleted, the brand was blocked, the network will not say).

        `published` with the reply's URL records it as published; `not_posted` says
        nothing went out: the case fails and can be retried. Either way the check stops.
        """
        outcome = outcome.strip().lower().replace("-", "_")
        url = url.strip().strip("<>")

        def work(db: Database, case: Case, now: datetime) -> Case:
            if not is_admin(self.config, actor):
                raise NotAllowed("Only admins can settle a publish by hand.")
            if outcome not in {"published", "not_posted"}:
                raise Refusal(
                    f"Usage: settle {case.id} published URL, or settle {case.id} not-posted",
                    code="usage",
                )
            if not case.publish_uncertain or case.state is not CaseState.APPROVED:
                raise Refusal(
                    f"Case #{case.id} has no publish of unknown outcome to settle.",
                    code="no_change",
                )
            post_id = _post_id_from_url(url) if outcome == "published" else None
            if outcome == "published" and post_id is None and case.draft_private and not url:
                # A private message has no public link to give: the admin's word is the record.
                post_id = f"settled-by-hand:{now.isoformat()}"
            if outcome == "published" and post_id is None:
                raise Refusal(
                    "Give the link of the reply as it is on the network, e.g."
                    f" `settle {case.id} published https://x.com/acme/status/123`.",
                    code="usage",
                )
            item = db.execute(
                "SELECT id, state, payload FROM outbox WHERE kind = 'publish' AND case_id = ?"
                " AND state IN ('pending', 'sending') ORDER BY id DESC LIMIT 1",
                (case.id,),
            ).fetchone()
            if item is not None and item[1] == "sending":
                raise Refusal(
                    f"socialcare is checking {network_name(case.network)} for case #{case.id}"
                    " right now; try again in a minute.",
                    code="busy",
                )
            final = "done" if outcome == "published" else "failed"
            if item is not None:
                db.execute(
                    "UPDATE outbox SET state = ?, last_error = ?, updated_at = ? WHERE id = ?",
                    (final, f"settled by hand: {outcome}", now.isoformat(), item[0]),
                )
            who = f"<@{actor.user_id}>"
            common = {"settled_by_hand": True, "outbox_id": item[0] if item else None}
            if outcome == "published" and case.draft_private:
                # Meta allows one private reply per comment: this one counts.
                payload = json.loads(item[2] or "{}") if item else {}
                answered = payload.get("in_reply_to_id") or self._reply_target(db, case)
                self._record_private_reply(db, case, answered, str(post_id), now)
            if outcome == "published":
                self._transition(
                    db,
                    case,
                    actor,
                    Action.PUBLISH_OK,
                    now,
                    sets={
                        "published_id": post_id,
                        "published_url": url,
                        "publish_uncertain_since": None,
                        "first_response_at": (case.first_response_at or now).isoformat(),
                        "closed_at": now.isoformat(),
                        "note": None,
                    },
                    detail={"post_id": post_id, "url": url, **common},
                    text=case.draft_text,
                    note=f"{who} settled the unknown outcome: the reply is out ({url}).",
                )
            else:
                reason = f"settled by hand by {who}: the reply was not posted"
                self._transition(
                    db,
                    case,
                    actor,
                    Action.PUBLISH_FAILED,
                    now,
                    sets={"note": f"Not posted ({reason}).", "publish_uncertain_since": None},
                    detail={"reason": reason, **common},
                    note=f"{who} settled the unknown outcome: nothing was posted."
                    " Use Retry to post the approved reply.",
                )
            return self._load(db, case.id)

        return self._act(actor, "settle", ref, work)

    @staticmethod
    def _record_private_reply(
        db: Database, case: Case, comment_id: str, post_id: str, now: datetime
    ) -> None:
        """The comment's one private reply (Meta allows one each) is spent."""
        db.execute(
            "INSERT INTO private_replies (network, comment_id, case_id, post_id, sent_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (case.network, comment_id, case.id, post_id, now.isoformat()),
        )

    def uncertain_publishes(self) -> list[Case]:
        """Cases whose reply may be out unrecorded, oldest first (for health and reports)."""
        ids = [
            r[0]
            for r in self.store.db.execute(
                "SELECT id FROM cases WHERE publish_uncertain_since IS NOT NULL"
                " ORDER BY publish_uncertain_since"
            )
        ]
        return [self.get_case(i) for i in ids]


SYSTEM_ACTOR = Actor(user_id="socialcare", surface="system")


def _post_id_from_url(url: str) -> str | None:
    """The post's id from its link: the last path segment (x.com/…/status/ID,
    bsky.app/…/post/RKEY, an instance's /@user/ID, a Graph comment id)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    segments = [s for s in parts.path.split("/") if s]
    return segments[-1][:200] if segments else None


def _required_reason(reason: str, verb: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise Refusal(f"Say why you {verb} it, e.g. `{verb} 12 <reason>`.", code="no_reason")
    return reason[:500]
