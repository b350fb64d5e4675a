"""Follow-through jobs: SLA reminders and escalation, daily digests, spike alerts.

Every job is a plain function of `now` (tests inject the clock) and idempotent: what
it has done is recorded in the database in the same transaction as the message it
queues (`sla_events`, `job_runs`, the spike episode), so a restart, a second tick or a
missed run sends each thing exactly once. Only the process holding the scheduler lease
runs them, so two bots on one database do not both send.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from sqlite_utils import Database

from bot import audit, outbox
from bot.digest import build_digest
from bot.models import network_name
from bot.outbox import DIGEST, NOTIFY
from bot.service import CareService
from bot.stale import StaleClaims

log = logging.getLogger(__name__)
MANAGERS = "managers"
LEASE_KEY = "scheduler_lease"
SPIKE_KEY = "spike_episode"
OPEN_NOT_REPLIED = ("new", "claimed", "awaiting_approval", "approved", "failed")


def queue_notice(
    db: Database,
    now: datetime,
    *,
    to: str,
    text: str,
    case_id: int | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Queue a plain message. `to`: a department id, "managers", or "user:<id>"."""
    outbox.enqueue(
        db,
        kind=NOTIFY,
        now=now,
        case_id=case_id,
        channel=to,
        payload={"text": text},
        dedupe_key=dedupe_key,
    )


class FollowUp:
    def __init__(self, service: CareService) -> None:
        self.service = service
        self.config = service.config
        self.store = service.store

    # ------------------------------------------------------------------ lease

    def hold_lease(
        self, owner: str, now: datetime, *, ttl: timedelta = timedelta(minutes=3)
    ) -> bool:
        """Take or renew the one-scheduler-per-database lease; False if another holds it."""
        return self.service.hold_lease(LEASE_KEY, owner, now, ttl=ttl)

    # ------------------------------------------------------------------ SLA

    def check_sla(self, now: datetime) -> int:
        """Remind before the due time, escalate at breach; each once per case."""
        lead = timedelta(minutes=self.config.sla.remind_before_minutes)
        marks = ",".join("?" for _ in OPEN_NOT_REPLIED)
        rows = self.store.query(
            f"SELECT * FROM cases WHERE state IN ({marks}) AND needs_reply = 1"
            " AND first_response_at IS NULL AND sla_due_at IS NOT NULL AND sla_due_at <= ?",
            [*OPEN_NOT_REPLIED, (now + lead).isoformat()],
        )
        sent = 0
        for row in rows:
            due = datetime.fromisoformat(row["sla_due_at"])
            kind = "breach" if now >= due else "reminder"
            sent += self._sla_event(row, kind, due, now)
        return sent

    def _sla_event(self, row: dict[str, Any], kind: str, due: datetime, now: datetime) -> int:
        dept = self.config.department(row["department"])
        name = dept.name if dept else row["department"]
        case_id = row["id"]
        local_due = due.astimezone(self.config.tz).strftime("%H:%M %Z")
        with self.store.write() as db:
            fresh = db.execute(
                "INSERT INTO sla_events (case_id, kind, at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (case_id, kind, now.isoformat()),
            ).rowcount
            if not fresh:
                return 0
            if kind == "reminder":
                who = (
                    f"<@{row['claimed_by']}>" if row["claimed_by"] else "Nobody has claimed it yet."
                )
                text = f"Reminder: case #{case_id} is due for a first reply by {local_due}. {who}"
                if row["claimed_by"]:
                    queue_notice(
                        db, now, to=f"user:{row['claimed_by']}", text=text, case_id=case_id
                    )
                self._thread_note(db, case_id, row["department"], now, text)
            else:
                managers = " ".join(f"<@{m}>" for m in (dept.managers if dept else []))
                text = (
                    f"SLA breached: case #{case_id} in {name} had no reply by {local_due}"
                    f" ({row['state'].replace('_', ' ')}). {managers}".rstrip()
                )
                self._thread_note(db, case_id, row["department"], now, text)
                if self.config.has_managers_channel:
                    queue_notice(db, now, to=MANAGERS, text=text, case_id=case_id)
                else:
                    for manager in dept.managers if dept else []:
                        queue_notice(db, now, to=f"user:{manager}", text=text, case_id=case_id)
            audit.append(
                db,
                at=now,
                actor="system:socialcare",
                action=f"sla.{kind}",
                case_id=case_id,
                detail={"due": due.isoformat()},
            )
        return 1

    def _thread_note(
        self, db: Database, case_id: int, department: str, now: datetime, text: str
    ) -> None:
        # Through the service: a grouped case's note goes to its group's card.
        self.service.queue_card_update(db, case_id, now, note=text)

    # ------------------------------------------------------------------ digest

    def last_digest_time(self, now: datetime) -> datetime:
        """The most recent scheduled digest time at or before `now`."""
        hour, minute = (int(x) for x in self.config.digest.time.split(":"))
        local = now.astimezone(self.config.tz)
        at = datetime.combine(local.date(), time(hour, minute), tzinfo=self.config.tz)
        if at > local:
            at = datetime.combine(
                local.date() - timedelta(days=1), time(hour, minute), tzinfo=self.config.tz
            )
        return at

    def run_scheduled_digest(self, now: datetime) -> bool:
        """Send the digest due at the last scheduled time, unless it was sent already.

        Called on schedule and at start-up: a digest missed while the bot was down is sent
        once when it comes back (covering the 24 hours before its scheduled time).
        """
        scheduled = self.last_digest_time(now)
        period = scheduled.date().isoformat()
        if not self.store.scalar("SELECT 1 FROM job_runs WHERE job = 'digest' LIMIT 1"):
            # A new installation missed nothing: its first digest is the next scheduled one.
            with self.store.write() as db:
                db.execute(
                    "INSERT INTO job_runs (job, period, at) VALUES ('digest', ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (period, now.isoformat()),
                )
            return False
        if now - scheduled > timedelta(hours=20):
            return False  # too stale to be useful; the next one is close
        if self.store.scalar(
            "SELECT 1 FROM job_runs WHERE job = 'digest' AND period = ?", [period]
        ):
            return False  # sent already: don't build it again on every tick
        return self.send_digests(scheduled, period=period)

    def send_digests(
        self, until: datetime, *, period: str | None = None, department: str | None = None
    ) -> bool:
        """Queue the digests ending at `until`: each department's, then the managers'.

        With `period`, at most once per period (the scheduled run); without, always (the
        `socialcare digest` command: every call sends).
        """
        now = self.service.clock.now()
        departments = [d for d in self.config.departments if department in (None, d.id)]
        digests = [
            (d.id, build_digest(self.config, self.store, until=until, department=d.id))
            for d in departments
        ]
        if department is None and self.config.has_managers_channel:
            digests.append((MANAGERS, build_digest(self.config, self.store, until=until)))
        with self.store.write() as db:
            if period is not None:
                claimed = db.execute(
                    "INSERT INTO job_runs (job, period, at) VALUES ('digest', ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (period, now.isoformat()),
                ).rowcount
                if not claimed:
                    return False
            for target, digest in digests:
                outbox.enqueue(
                    db, kind=DIGEST, now=now, channel=target, payload={"digest": digest.to_json()}
                )
            audit.append(
                db,
                at=now,
                actor="system:socialcare",
                action="digest.sent",
                detail={"until": until.isoformat(), "targets": [t for t, _ in digests]},
            )
        return True

    # ------------------------------------------------------------------ spikes

    def check_spike(self, now: datetime) -> bool:
        """Alert the managers once per episode when volume jumps far above its baseline."""
        hour_ago = now - timedelta(hours=1)
        week_ago = now - timedelta(days=7)
        last = self._count(hour_ago, now)
        last_negative = self._count(hour_ago, now, negative=True)
        first_seen = self.store.scalar(
            "SELECT min(mention_at) FROM cases WHERE mention_at >= ?", [week_ago.isoformat()]
        )
        history_hours = 24.0
        if first_seen:
            span = (hour_ago - datetime.fromisoformat(first_seen)).total_seconds() / 3600
            history_hours = max(24.0, min(24.0 * 7, span))
        baseline = self._count(week_ago, hour_ago) / history_hours
        baseline_negative = self._count(week_ago, hour_ago, negative=True) / history_hours
        alerts = self.config.alerts
        threshold = max(alerts.spike_min_mentions, alerts.spike_factor * baseline)
        threshold_negative = max(alerts.spike_min_negative, alerts.spike_factor * baseline_negative)
        spiking = last >= threshold or last_negative >= threshold_negative
        episode = self.store.scalar("SELECT value FROM settings WHERE key = ?", [SPIKE_KEY])
        if spiking and not episode:
            self._open_episode(now, last, last_negative, baseline)
            return True
        if episode and last < threshold / 2 and last_negative < threshold_negative / 2:
            with self.store.write() as db:
                db.execute("DELETE FROM settings WHERE key = ?", (SPIKE_KEY,))
                audit.append(db, at=now, actor="system:socialcare", action="spike.ended")
        return False

    def _count(self, since: datetime, until: datetime, *, negative: bool = False) -> int:
        sql = "SELECT count(*) FROM cases WHERE mention_at >= ? AND mention_at < ?"
        if negative:
            sql += " AND sentiment = 'negative'"
        return int(self.store.scalar(sql, [since.isoformat(), until.isoformat()]) or 0)

    def _open_episode(self, now: datetime, last: int, negative: int, baseline: float) -> None:
        examples = self.store.query(
            "SELECT c.id, m.text FROM cases c JOIN mentions m"
            " ON m.network = c.network AND m.id = c.mention_id"
            " WHERE c.mention_at >= ? ORDER BY (c.sentiment = 'negative') DESC, c.id DESC LIMIT 3",
            [(now - timedelta(hours=1)).isoformat()],
        )
        # Example texts are the public's words: no "<" reaches Slack to form a <@U…> ping.
        lines = [
            f"#{r['id']}: {' '.join(r['text'].split())[:140].replace('<', '‹')}" for r in examples
        ]
        by_network = self.store.query(
            "SELECT network, count(*) AS n FROM cases WHERE mention_at >= ?"
            " GROUP BY network ORDER BY n DESC, network",
            [(now - timedelta(hours=1)).isoformat()],
        )
        where = (
            " By network: "
            + ", ".join(f"{network_name(r['network'])} {r['n']}" for r in by_network)
            + "."
            if len(by_network) > 1
            else ""
        )
        text = (
            f"Spike alert: {last} mentions in the last hour ({negative} negative),"
            f" against about {baseline:.1f} an hour usually.{where}\n" + "\n".join(lines)
        )
        with self.store.write() as db:
            if db.execute("SELECT 1 FROM settings WHERE key = ?", (SPIKE_KEY,)).fetchone():
                return  # another tick opened it meanwhile
            db.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
                (SPIKE_KEY, now.isoformat(), now.isoformat()),
            )
            if self.config.has_managers_channel:
                queue_notice(db, now, to=MANAGERS, text=text)
            else:
                for dept in self.config.departments:
                    for manager in dept.managers:
                        queue_notice(db, now, to=f"user:{manager}", text=text)
            audit.append(
                db,
                at=now,
                actor="system:socialcare",
                action="spike.alert",
                detail={"last_hour": last, "negative": negative, "baseline": round(baseline, 2)},
            )

    # ------------------------------------------------------------------ one tick

    def tick(self, now: datetime, *, owner: str) -> dict[str, Any]:
        """Everything due now, if this process holds the lease."""
        if not self.hold_lease(owner, now):
            return {"lease": False}
        return {
            "lease": True,
            "sla": self.check_sla(now),
            "digest": self.run_scheduled_digest(now),
            "spike": self.check_spike(now),
            "stale_claims": StaleClaims(self.service).check(now),
        }
