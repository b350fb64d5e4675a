"""APScheduler jobs of the bot process: the follow-through tick and the digest on time.

The jobs themselves are idempotent (see bot.followup), so APScheduler only has to call
them: no job store is persisted (nothing to share between processes by mistake), a
missed digest is caught up by the tick at start-up, and coalescing keeps a slow tick
from piling up.
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger


def start_scheduler(
    tick: Callable[[], object], *, digest_time: str, tz: ZoneInfo, every_seconds: int = 60
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=tz,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    hour, minute = (int(part) for part in digest_time.split(":"))
    # First tick at once: catches up a digest missed while the bot was down.
    scheduler.add_job(tick, IntervalTrigger(seconds=every_seconds, timezone=tz), id="tick")
    scheduler.add_job(tick, CronTrigger(hour=hour, minute=minute, timezone=tz), id="digest")
    scheduler.start()
    scheduler.get_job("tick").modify(next_run_time=_now(tz))
    return scheduler


def _now(tz: ZoneInfo):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.now(tz)
