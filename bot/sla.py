"""Business-time arithmetic for first-response SLAs. Pure: callers pass every instant.

Business hours are *wall-clock* hours in the calendar's zone: 09:00-17:00 means whenever the
office clock reads between 09:00 and 17:00 on a business day. Each day's window is found by
converting that day's wall-clock boundaries to UTC with zoneinfo (never by adding 24 hours to
the day before), so a 09:00-17:00 day lasts 8 hours even on a DST-change day, and a window that
contains a clock change is one hour shorter (spring forward) or longer (fall back).

Conventions:

- Windows are half-open: 09:00 is business time, 17:00 is not. A deadline that lands exactly on
  the close stays there (17:00), it does not roll to the next opening.
- A boundary that falls in a spring-forward gap (the wall time never happens) means the first
  instant the clock reads at or after it, i.e. the moment of the change.
- A boundary that falls in a fall-back overlap (the wall time happens twice) opens at its first
  occurrence and closes at its last, so the repeated hour counts in full.
- All results are aware datetimes in UTC. Inputs may be in any zone but must be aware.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.config import DAYS, Config

_ONE_DAY = timedelta(days=1)
_RESOLUTION = timedelta(microseconds=1)


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours: `start`-`end` wall-clock time in `tz` on `days` (Monday=0 ... Sunday=6)."""

    tz: ZoneInfo
    start: time
    end: time
    days: frozenset[int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        if not self.days:
            raise ValueError("a business calendar needs at least one business day")
        bad = sorted(day for day in self.days if day not in range(7))
        if bad:
            raise ValueError(f"business days must be 0 (Monday) to 6 (Sunday), got {bad}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("business hours are wall-clock times; give them without tzinfo")
        if self.start >= self.end:
            raise ValueError(f"business hours start {self.start} must be before end {self.end}")

    @classmethod
    def from_config(cls, config: Config) -> BusinessCalendar:
        """The calendar of `[sla]` business_hours/business_days in `[bot]` timezone."""
        opening, _, closing = config.sla.business_hours.partition("-")
        return cls(
            tz=config.tz,
            start=time.fromisoformat(opening.strip()),
            end=time.fromisoformat(closing.strip()),
            days=frozenset(DAYS.index(day.lower()) for day in config.sla.business_days),
        )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"need a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _wall(tz: ZoneInfo, instant: datetime) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _instant(tz: ZoneInfo, day: date, wall: time, *, last: bool) -> datetime:
    """The UTC instant at which the clock in `tz` reads `wall` on `day` (see module docs)."""
    naive = datetime.combine(day, wall)
    early = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if early == late:
        return early
    if early < late:  # fall-back overlap: the wall time happens twice
        return late if last else early
    # Spring-forward gap: `late` (read with the new offset) is before the change and `early`
    # (read with the old offset) after it. Find the change: the first instant whose wall time
    # is at or after `wall`. Gaps are rare and short, so a bisection is cheap.
    lo, hi = late, early
    while hi - lo > _RESOLUTION:
        mid = lo + (hi - lo) // 2
        if _wall(tz, mid) >= naive:
            hi = mid
        else:
            lo = mid
    return hi


@lru_cache(maxsize=8192)
def _window(cal: BusinessCalendar, day: date) -> tuple[datetime, datetime] | None:
    """The UTC [open, close) of `day`, or None if it is not a business day (or is empty).

    Cached: a pure function of a frozen calendar and a date, asked about the same few days
    over and over (every due time and every "time left" display in the same weeks).
    """
    if day.weekday() not in cal.days:
        return None
    opening = _instant(cal.tz, day, cal.start, last=False)
    closing = _instant(cal.tz, day, cal.end, last=True)
    # Only possible when both boundaries fall into the same spring-forward gap.
    return (opening, closing) if opening < closing else None


def _windows(cal: BusinessCalendar, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Every business window that closes after `since` (UTC), in order, without end."""
    day = _wall(cal.tz, since).date()
    while True:
        window = _window(cal, day)
        if window is not None and window[1] > since:
            yield window
        day += _ONE_DAY


def is_business_time(cal: BusinessCalendar, moment: datetime) -> bool:
    """Whether `moment` falls inside business hours (opening inclusive, closing exclusive)."""
    instant = _utc(moment)
    window = _window(cal, _wall(cal.tz, instant).date())
    return window is not None and window[0] <= instant < window[1]


def next_opening(cal: BusinessCalendar, moment: datetime) -> datetime:
    """The first business instant at or after `moment`, in UTC.

    That is `moment` itself while business is open, otherwise the next opening time. It is
    where the SLA clock starts counting for a mention received at `moment`.
    """
    instant = _utc(moment)
    opening, _ = next(_windows(cal, instant))
    return max(opening, instant)


def add_business_minutes(cal: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """The instant (UTC) at which `minutes` of business time have elapsed since `start`.

    Counting begins at `next_opening(cal, start)`, so outside business hours (or exactly at the
    close) the clock waits for the next opening; zero minutes therefore gives that opening. A
    result that lands exactly on a closing time stays on it. Runs one step per calendar day,
    however large `minutes` is.
    """
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, got {minutes}")
    cursor = _utc(start)
    remaining = timedelta(minutes=minutes)
    for opening, closing in _windows(cal, cursor):
        cursor = max(cursor, opening)
        available = closing - cursor
        if remaining <= available:
            return cursor + remaining
        remaining -= available
    raise AssertionError("unreachable: business windows never run out")  # pragma: no cover


def business_seconds_between(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Seconds of business time in [start, end); 0.0 when `end` is not after `start`.

    For KPIs (first-response time in business time) and "time remaining" displays. It is the
    inverse of add_business_minutes: business_seconds_between(s, add(s, m)) == m * 60.
    """
    begin, finish = _utc(start), _utc(end)
    total = timedelta()
    if finish <= begin:
        return 0.0
    for opening, closing in _windows(cal, begin):
        if opening >= finish:
            break
        overlap = min(closing, finish) - max(opening, begin)
        if overlap > timedelta():
            total += overlap
    return total.total_seconds()


def first_response_due(
    cal: BusinessCalendar,
    mention_at: datetime,
    minutes: int,
    *,
    urgent: bool,
    urgent_calendar_time: bool,
) -> datetime:
    """When the first response to a mention received at `mention_at` is due (UTC).

    Normally the SLA counts business time only, so a complaint on Friday evening is due early
    on Monday. Urgent cases (safety hazards, legal threats, a post going viral) cannot wait for
    Monday: with `urgent_calendar_time` they are due `minutes` of real elapsed time after the
    mention, nights and weekends included. Elapsed time is counted in UTC, so a DST change in
    between neither adds nor removes an hour.
    """
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, got {minutes}")
    if urgent and urgent_calendar_time:
        return _utc(mention_at) + timedelta(minutes=minutes)
    return add_business_minutes(cal, mention_at, minutes)
