"""Business-time SLA arithmetic. Expectations are worked out by hand and written as UTC literals.

Zone facts used below (2026):
- Europe/London: GMT (+0) in winter, BST (+1) in summer. Spring forward Sun 29 Mar at 01:00 UTC
  (01:00 GMT -> 02:00 BST); fall back Sun 25 Oct at 01:00 UTC (02:00 BST -> 01:00 GMT).
- America/New_York: EST (-5) / EDT (-4). Spring forward Sun 8 Mar at 07:00 UTC
  (02:00 EST -> 03:00 EDT); fall back Sun 1 Nov at 06:00 UTC (02:00 EDT -> 01:00 EST).
- Mon 1 Jun 2026 is a Monday in BST, so London wall time = UTC + 1 that week.
"""

from __future__ import annotations

import random
import time as clock
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, parse_config
from bot.errors import ConfigError
from bot.sla import (
    BusinessCalendar,
    _window,
    add_business_minutes,
    business_seconds_between,
    first_response_due,
    is_business_time,
    next_opening,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))

OFFICE = BusinessCalendar(LONDON, time(9), time(17), WEEKDAYS)
LONDON_NIGHT = BusinessCalendar(LONDON, time(0, 30), time(3, 30), EVERY_DAY)
NY_OFFICE = BusinessCalendar(NEW_YORK, time(9), time(17), WEEKDAYS)
NY_NIGHT = BusinessCalendar(NEW_YORK, time(0, 30), time(3, 30), EVERY_DAY)


def _at(
    tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0
) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=tz)


def ldn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return _at(LONDON, y, mo, d, h, mi, s, us)


def nyc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return _at(NEW_YORK, y, mo, d, h, mi, s, us)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def make_config(tmp_path: Path, timezone: str = "Europe/London", **sla: Any) -> Config:
    return parse_config(
        {
            "bot": {"brand": "A", "timezone": timezone},
            "slack": {"enabled": False},
            "departments": [{"id": "care", "name": "Care"}],
            "sla": sla,
        },
        base_dir=tmp_path,
    )


# --------------------------------------------------------------------------- config / calendar


def test_from_config_defaults(tmp_path: Path) -> None:
    cal = BusinessCalendar.from_config(make_config(tmp_path))
    assert cal == BusinessCalendar(LONDON, time(9), time(17), WEEKDAYS)


def test_from_config_custom(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        timezone="America/New_York",
        business_hours="08:30-18:15",
        business_days=["Sat", "sun", "wed"],
    )
    cal = BusinessCalendar.from_config(config)
    assert cal.tz == NEW_YORK
    assert (cal.start, cal.end) == (time(8, 30), time(18, 15))
    assert cal.days == frozenset({2, 5, 6})


def test_config_rejects_no_business_days(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_config(tmp_path, business_days=[])


@pytest.mark.parametrize(
    ("start", "end", "days", "message"),
    [
        (time(9), time(17), frozenset(), "at least one business day"),
        (time(9), time(17), frozenset({7}), "0 \\(Monday\\) to 6"),
        (time(17), time(9), WEEKDAYS, "before end"),
        (time(9), time(9), WEEKDAYS, "before end"),
        (time(9, tzinfo=UTC), time(17), WEEKDAYS, "without tzinfo"),
    ],
)
def test_calendar_validation(start: time, end: time, days: frozenset[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(LONDON, start, end, days)


def test_calendar_days_coerced_to_frozenset() -> None:
    cal = BusinessCalendar(LONDON, time(9), time(17), {0, 1})  # type: ignore[arg-type]
    assert cal.days == frozenset({0, 1})
    assert hash(cal)


# --------------------------------------------------------------------------- add_business_minutes


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        # within one day (Mon 1 Jun 2026, BST)
        (ldn(2026, 6, 1, 10, 0), 30, utc(2026, 6, 1, 9, 30)),
        (ldn(2026, 6, 1, 9, 0), 1, utc(2026, 6, 1, 8, 1)),
        (ldn(2026, 6, 1, 12, 15, 30), 45, utc(2026, 6, 1, 12, 0, 30)),
        # crossing a night: Mon 16:30 + 60 -> Tue 09:30 BST
        (ldn(2026, 6, 1, 16, 30), 60, utc(2026, 6, 2, 8, 30)),
        (ldn(2026, 6, 1, 16, 0), 61, utc(2026, 6, 2, 8, 1)),
        # crossing a weekend: Fri 16:00 + 120 -> Mon 10:00 BST
        (ldn(2026, 6, 5, 16, 0), 120, utc(2026, 6, 8, 9, 0)),
        (ldn(2026, 6, 5, 16, 59), 1, utc(2026, 6, 5, 16, 0)),
        (ldn(2026, 6, 5, 16, 59), 2, utc(2026, 6, 8, 8, 1)),
        # starting on the weekend
        (ldn(2026, 6, 6, 12, 0), 30, utc(2026, 6, 8, 8, 30)),
        (ldn(2026, 6, 6, 0, 0), 480, utc(2026, 6, 8, 16, 0)),
        (ldn(2026, 6, 7, 23, 59), 1, utc(2026, 6, 8, 8, 1)),
        # before opening / after closing
        (ldn(2026, 6, 2, 7, 0), 45, utc(2026, 6, 2, 8, 45)),
        (ldn(2026, 6, 2, 0, 0), 45, utc(2026, 6, 2, 8, 45)),
        (ldn(2026, 6, 2, 18, 0), 45, utc(2026, 6, 3, 8, 45)),
        (ldn(2026, 6, 2, 23, 59, 59), 45, utc(2026, 6, 3, 8, 45)),
        # exact boundaries: start at 17:00 waits for the next 09:00; end at 17:00 stays
        (ldn(2026, 6, 2, 17, 0), 10, utc(2026, 6, 3, 8, 10)),
        (ldn(2026, 6, 5, 17, 0), 10, utc(2026, 6, 8, 8, 10)),
        (ldn(2026, 6, 2, 9, 0), 480, utc(2026, 6, 2, 16, 0)),
        (ldn(2026, 6, 2, 16, 0), 60, utc(2026, 6, 2, 16, 0)),
        (ldn(2026, 6, 2, 8, 0), 480, utc(2026, 6, 2, 16, 0)),
        (ldn(2026, 6, 2, 9, 0), 0, utc(2026, 6, 2, 8, 0)),
        (ldn(2026, 6, 2, 13, 7), 0, utc(2026, 6, 2, 12, 7)),
        (ldn(2026, 6, 2, 17, 0), 0, utc(2026, 6, 3, 8, 0)),
        (ldn(2026, 6, 6, 10, 0), 0, utc(2026, 6, 8, 8, 0)),
        # multi-day: three business days of minutes
        (ldn(2026, 6, 1, 9, 0), 3 * 480, utc(2026, 6, 3, 16, 0)),
        (ldn(2026, 6, 1, 10, 0), 3 * 480, utc(2026, 6, 4, 9, 0)),
        (ldn(2026, 6, 3, 10, 0), 3 * 480, utc(2026, 6, 8, 9, 0)),
        (ldn(2026, 6, 5, 9, 0), 5 * 480, utc(2026, 6, 11, 16, 0)),
        # the largest allowed SLA (14 days of minutes = 42 business days = 8 weeks + 2 days)
        (ldn(2026, 6, 1, 9, 0), 60 * 24 * 14, utc(2026, 7, 28, 16, 0)),
        # start given in another zone: 08:00 UTC is 09:00 BST
        (utc(2026, 6, 1, 8, 0), 60, utc(2026, 6, 1, 9, 0)),
        (utc(2026, 6, 1, 7, 59), 60, utc(2026, 6, 1, 9, 0)),
        (nyc(2026, 6, 5, 11, 30), 30, utc(2026, 6, 5, 16, 0)),  # Fri 16:30 BST: ends at 17:00
        (nyc(2026, 6, 5, 11, 30), 45, utc(2026, 6, 8, 8, 15)),  # ... 15 min more on Mon
    ],
)
def test_add_business_minutes_office(start: datetime, minutes: int, expected: datetime) -> None:
    result = add_business_minutes(OFFICE, start, minutes)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("cal", "start", "minutes", "expected"),
    [
        # Weekends spanning a clock change: 09:00-17:00 wall time on both sides.
        # Fri 27 Mar 16:00 GMT + 120 -> Mon 30 Mar 10:00 BST
        (OFFICE, ldn(2026, 3, 27, 16, 0), 120, utc(2026, 3, 30, 9, 0)),
        # Fri 23 Oct 16:00 BST + 120 -> Mon 26 Oct 10:00 GMT
        (OFFICE, ldn(2026, 10, 23, 16, 0), 120, utc(2026, 10, 26, 10, 0)),
        # Fri 6 Mar 16:00 EST + 120 -> Mon 9 Mar 10:00 EDT
        (NY_OFFICE, nyc(2026, 3, 6, 16, 0), 120, utc(2026, 3, 9, 14, 0)),
        # Fri 30 Oct 16:00 EDT + 120 -> Mon 2 Nov 10:00 EST
        (NY_OFFICE, nyc(2026, 10, 30, 16, 0), 120, utc(2026, 11, 2, 15, 0)),
        # A 09:00-17:00 day on the change day itself is still 8 hours (change is outside it).
        (
            BusinessCalendar(LONDON, time(9), time(17), EVERY_DAY),
            ldn(2026, 3, 29, 9, 0),
            480,
            utc(2026, 3, 29, 16, 0),
        ),
        (
            BusinessCalendar(LONDON, time(9), time(17), EVERY_DAY),
            ldn(2026, 3, 28, 16, 0),
            120,
            utc(2026, 3, 29, 9, 0),
        ),
        (
            BusinessCalendar(LONDON, time(9), time(17), EVERY_DAY),
            ldn(2026, 10, 25, 9, 0),
            480,
            utc(2026, 10, 25, 17, 0),
        ),
        # London 00:30-03:30 every day, spring forward inside the window:
        # Sun 29 Mar opens 00:30 GMT = 00:30 UTC, closes 03:30 BST = 02:30 UTC (2 hours).
        (LONDON_NIGHT, ldn(2026, 3, 29, 0, 30), 60, utc(2026, 3, 29, 1, 30)),
        (LONDON_NIGHT, ldn(2026, 3, 29, 0, 30), 120, utc(2026, 3, 29, 2, 30)),
        # ... + 150 -> 30 min into Mon 30 Mar (opens 00:30 BST = Sun 23:30 UTC)
        (LONDON_NIGHT, ldn(2026, 3, 29, 0, 30), 150, utc(2026, 3, 30, 0, 0)),
        # Sat 28 Mar is a plain 3-hour window (00:30-03:30 UTC), then 60 min into Sunday.
        (LONDON_NIGHT, ldn(2026, 3, 28, 0, 30), 240, utc(2026, 3, 29, 1, 30)),
        # London fall back inside the window:
        # Sun 25 Oct opens 00:30 BST = Sat 23:30 UTC, closes 03:30 GMT = 03:30 UTC (4 hours).
        (LONDON_NIGHT, ldn(2026, 10, 25, 0, 30), 210, utc(2026, 10, 25, 3, 0)),
        (LONDON_NIGHT, ldn(2026, 10, 25, 0, 30), 240, utc(2026, 10, 25, 3, 30)),
        (LONDON_NIGHT, ldn(2026, 10, 25, 0, 30), 241, utc(2026, 10, 26, 0, 31)),
        (LONDON_NIGHT, utc(2026, 10, 25, 1, 15), 60, utc(2026, 10, 25, 2, 15)),
        # New York 00:30-03:30 every day, spring forward Sun 8 Mar:
        # opens 00:30 EST = 05:30 UTC, closes 03:30 EDT = 07:30 UTC (2 hours).
        (NY_NIGHT, nyc(2026, 3, 8, 0, 30), 90, utc(2026, 3, 8, 7, 0)),
        (NY_NIGHT, nyc(2026, 3, 8, 0, 30), 120, utc(2026, 3, 8, 7, 30)),
        # ... + 121 -> Mon 9 Mar 00:30 EDT = 04:30 UTC, plus 1
        (NY_NIGHT, nyc(2026, 3, 8, 0, 30), 121, utc(2026, 3, 9, 4, 31)),
        # New York fall back Sun 1 Nov:
        # opens 00:30 EDT = 04:30 UTC, closes 03:30 EST = 08:30 UTC (4 hours).
        (NY_NIGHT, nyc(2026, 11, 1, 0, 30), 180, utc(2026, 11, 1, 7, 30)),
        (NY_NIGHT, nyc(2026, 11, 1, 0, 30), 240, utc(2026, 11, 1, 8, 30)),
        # ... + 241 -> Mon 2 Nov 00:30 EST = 05:30 UTC, plus 1
        (NY_NIGHT, nyc(2026, 11, 1, 0, 30), 241, utc(2026, 11, 2, 5, 31)),
    ],
)
def test_add_business_minutes_dst(
    cal: BusinessCalendar, start: datetime, minutes: int, expected: datetime
) -> None:
    result = add_business_minutes(cal, start, minutes)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("cal", "start", "minutes", "expected"),
    [
        # Opening 01:30 does not exist on 29 Mar (01:00 GMT jumps to 02:00 BST): the window
        # opens at the change, 01:00 UTC, and closes 03:30 BST = 02:30 UTC (90 minutes).
        (
            BusinessCalendar(LONDON, time(1, 30), time(3, 30), EVERY_DAY),
            ldn(2026, 3, 29, 0, 0),
            90,
            utc(2026, 3, 29, 2, 30),
        ),
        (
            BusinessCalendar(LONDON, time(1, 30), time(3, 30), EVERY_DAY),
            ldn(2026, 3, 29, 0, 0),
            91,
            utc(2026, 3, 30, 0, 31),
        ),
        # Closing 01:30 does not exist either: 00:30-01:30 lasts 00:30-01:00 UTC.
        (
            BusinessCalendar(LONDON, time(0, 30), time(1, 30), EVERY_DAY),
            ldn(2026, 3, 29, 0, 30),
            31,
            utc(2026, 3, 29, 23, 31),  # Mon opens 00:30 BST = Sun 23:30 UTC, +1
        ),
        # A window entirely inside the gap (01:10-01:50) does not happen that day.
        (
            BusinessCalendar(LONDON, time(1, 10), time(1, 50), EVERY_DAY),
            ldn(2026, 3, 28, 1, 50),
            10,
            utc(2026, 3, 30, 0, 20),  # Mon 01:10 BST = 00:10 UTC, +10
        ),
        # Opening 01:30 happens twice on 25 Oct: it opens at the first, 01:30 BST = 00:30 UTC,
        # and closes 03:30 GMT = 03:30 UTC (3 hours).
        (
            BusinessCalendar(LONDON, time(1, 30), time(3, 30), EVERY_DAY),
            ldn(2026, 10, 25, 0, 0),
            180,
            utc(2026, 10, 25, 3, 30),
        ),
        # Closing 01:30 happens twice: it closes at the second, 01:30 GMT = 01:30 UTC, so
        # 00:30 BST (Sat 23:30 UTC) to 01:30 UTC is 2 hours.
        (
            BusinessCalendar(LONDON, time(0, 30), time(1, 30), EVERY_DAY),
            ldn(2026, 10, 25, 0, 30),
            120,
            utc(2026, 10, 25, 1, 30),
        ),
    ],
)
def test_boundaries_inside_dst_changes(
    cal: BusinessCalendar, start: datetime, minutes: int, expected: datetime
) -> None:
    assert add_business_minutes(cal, start, minutes) == expected


def test_large_minute_counts_are_fast() -> None:
    _window.cache_clear()  # time the real work, not the cache
    began = clock.perf_counter()
    for _ in range(20):
        add_business_minutes(OFFICE, ldn(2026, 6, 1, 9, 0), 60 * 24 * 14)
    # A year of business minutes still only walks calendar days.
    result = add_business_minutes(OFFICE, ldn(2026, 1, 5, 9, 0), 60 * 24 * 365)
    assert clock.perf_counter() - began < 2.0
    assert business_seconds_between(OFFICE, ldn(2026, 1, 5, 9, 0), result) == 60 * 24 * 365 * 60


@pytest.mark.parametrize("minutes", [-1, -60])
def test_negative_minutes_rejected(minutes: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_minutes(OFFICE, ldn(2026, 6, 1, 9, 0), minutes)
    with pytest.raises(ValueError, match="negative"):
        first_response_due(
            OFFICE, ldn(2026, 6, 1, 9, 0), minutes, urgent=True, urgent_calendar_time=True
        )


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_business_minutes(OFFICE, datetime(2026, 6, 1, 9), 5),
        lambda: business_seconds_between(OFFICE, datetime(2026, 6, 1, 9), utc(2026, 6, 2)),
        lambda: business_seconds_between(OFFICE, utc(2026, 6, 1), datetime(2026, 6, 2)),
        lambda: is_business_time(OFFICE, datetime(2026, 6, 1, 9)),
        lambda: next_opening(OFFICE, datetime(2026, 6, 1, 9)),
        lambda: first_response_due(
            OFFICE, datetime(2026, 6, 1, 9), 5, urgent=True, urgent_calendar_time=True
        ),
    ],
)
def test_naive_datetimes_rejected(call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


# --------------------------------------------------------------------------- is_business_time


@pytest.mark.parametrize(
    ("cal", "moment", "expected"),
    [
        (OFFICE, ldn(2026, 6, 1, 9, 0), True),
        (OFFICE, ldn(2026, 6, 1, 12, 0), True),
        (OFFICE, ldn(2026, 6, 1, 16, 59, 59, 999999), True),
        (OFFICE, ldn(2026, 6, 1, 17, 0), False),
        (OFFICE, ldn(2026, 6, 1, 8, 59, 59), False),
        (OFFICE, utc(2026, 6, 1, 8, 0), True),  # 09:00 BST
        (OFFICE, utc(2026, 6, 1, 16, 0), False),  # 17:00 BST
        (OFFICE, ldn(2026, 6, 6, 12, 0), False),  # Saturday
        (OFFICE, ldn(2026, 6, 7, 12, 0), False),  # Sunday
        (OFFICE, nyc(2026, 6, 1, 4, 0), True),  # 09:00 BST
        # Spring-forward gap opening (01:30-03:30 on 29 Mar opens at 01:00 UTC)
        (
            BusinessCalendar(LONDON, time(1, 30), time(3, 30), EVERY_DAY),
            utc(2026, 3, 29, 0, 59, 59),
            False,
        ),
        (
            BusinessCalendar(LONDON, time(1, 30), time(3, 30), EVERY_DAY),
            utc(2026, 3, 29, 1, 0),
            True,
        ),
        (
            BusinessCalendar(LONDON, time(1, 30), time(3, 30), EVERY_DAY),
            utc(2026, 3, 29, 2, 29),
            True,
        ),
        (
            BusinessCalendar(LONDON, time(1, 30), time(3, 30), EVERY_DAY),
            utc(2026, 3, 29, 2, 30),
            False,
        ),
        # Fall-back: 00:30-01:30 on 25 Oct covers both passes through 01:00-01:30
        (LONDON_NIGHT, utc(2026, 10, 24, 23, 30), True),  # 00:30 BST
        (
            BusinessCalendar(LONDON, time(0, 30), time(1, 30), EVERY_DAY),
            utc(2026, 10, 25, 0, 15),
            True,
        ),
        (
            BusinessCalendar(LONDON, time(0, 30), time(1, 30), EVERY_DAY),
            utc(2026, 10, 25, 1, 15),
            True,
        ),
        (
            BusinessCalendar(LONDON, time(0, 30), time(1, 30), EVERY_DAY),
            utc(2026, 10, 25, 1, 30),
            False,
        ),
    ],
)
def test_is_business_time(cal: BusinessCalendar, moment: datetime, expected: bool) -> None:
    assert is_business_time(cal, moment) is expected


# --------------------------------------------------------------------------- next_opening


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (ldn(2026, 6, 1, 12, 0), utc(2026, 6, 1, 11, 0)),  # open now: the moment itself
        (ldn(2026, 6, 1, 9, 0), utc(2026, 6, 1, 8, 0)),
        (ldn(2026, 6, 1, 7, 0), utc(2026, 6, 1, 8, 0)),
        (ldn(2026, 6, 1, 17, 0), utc(2026, 6, 2, 8, 0)),
        (ldn(2026, 6, 5, 17, 0), utc(2026, 6, 8, 8, 0)),
        (ldn(2026, 6, 6, 9, 0), utc(2026, 6, 8, 8, 0)),
        (ldn(2026, 3, 27, 18, 0), utc(2026, 3, 30, 8, 0)),  # Mon 09:00 BST after the change
        (ldn(2026, 10, 23, 18, 0), utc(2026, 10, 26, 9, 0)),  # Mon 09:00 GMT after the change
    ],
)
def test_next_opening(moment: datetime, expected: datetime) -> None:
    result = next_opening(OFFICE, moment)
    assert result == expected
    assert result.tzinfo is UTC


# ----------------------------------------------------------------------- business_seconds_between


@pytest.mark.parametrize(
    ("cal", "start", "end", "expected"),
    [
        (OFFICE, ldn(2026, 6, 1, 10, 0), ldn(2026, 6, 1, 10, 30), 1800.0),
        (OFFICE, ldn(2026, 6, 1, 16, 30), ldn(2026, 6, 2, 9, 30), 3600.0),
        (OFFICE, ldn(2026, 6, 5, 16, 0), ldn(2026, 6, 8, 10, 0), 7200.0),
        (OFFICE, ldn(2026, 6, 1, 0, 0), ldn(2026, 6, 8, 0, 0), 5 * 8 * 3600.0),
        (OFFICE, ldn(2026, 6, 6, 0, 0), ldn(2026, 6, 7, 23, 59), 0.0),  # weekend only
        (OFFICE, ldn(2026, 6, 1, 17, 0), ldn(2026, 6, 2, 9, 0), 0.0),  # overnight only
        (OFFICE, ldn(2026, 6, 1, 12, 0), ldn(2026, 6, 1, 12, 0), 0.0),  # empty
        (OFFICE, ldn(2026, 6, 2, 12, 0), ldn(2026, 6, 1, 12, 0), 0.0),  # reversed
        (OFFICE, ldn(2026, 6, 1, 12, 0, 0, 500000), ldn(2026, 6, 1, 12, 0, 1), 0.5),
        (OFFICE, utc(2026, 6, 1, 8, 0), nyc(2026, 6, 1, 12, 0), 8 * 3600.0),  # 09:00-17:00 BST
        # Week with the spring-forward weekend, Mon-Fri office hours are unaffected.
        (OFFICE, ldn(2026, 3, 27, 0, 0), ldn(2026, 3, 31, 0, 0), 2 * 8 * 3600.0),
        # Whole change days on the night calendars: 2h (spring), 4h (fall back).
        (LONDON_NIGHT, ldn(2026, 3, 29, 0, 0), ldn(2026, 3, 29, 12, 0), 2 * 3600.0),
        (LONDON_NIGHT, ldn(2026, 10, 25, 0, 0), ldn(2026, 10, 25, 12, 0), 4 * 3600.0),
        (NY_NIGHT, nyc(2026, 3, 8, 0, 0), nyc(2026, 3, 8, 12, 0), 2 * 3600.0),
        (NY_NIGHT, nyc(2026, 11, 1, 0, 0), nyc(2026, 11, 1, 12, 0), 4 * 3600.0),
        (NY_NIGHT, nyc(2026, 11, 1, 0, 0), nyc(2026, 11, 2, 0, 0), 4 * 3600.0),
        # Inside the fall-back window: 01:00 BST (00:00 UTC) to 01:00 GMT (01:00 UTC) is 1h.
        (LONDON_NIGHT, utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 0), 3600.0),
    ],
)
def test_business_seconds_between(
    cal: BusinessCalendar, start: datetime, end: datetime, expected: float
) -> None:
    assert business_seconds_between(cal, start, end) == expected


@pytest.mark.parametrize(
    "cal",
    [
        OFFICE,
        NY_OFFICE,
        LONDON_NIGHT,
        NY_NIGHT,
        BusinessCalendar(NEW_YORK, time(1, 30), time(2, 30), EVERY_DAY),  # vanishes in March
        BusinessCalendar(LONDON, time(8, 15), time(19, 45), frozenset({0, 2, 4, 6})),
        BusinessCalendar(ZoneInfo("Asia/Tokyo"), time(10), time(11), frozenset({3})),
    ],
    ids=["office", "ny-office", "london-night", "ny-night", "ny-gap", "odd-days", "tokyo-thu"],
)
def test_seconds_between_inverts_add(cal: BusinessCalendar) -> None:
    rng = random.Random(1234)
    year = utc(2026, 1, 1)
    for _ in range(300):
        start = year + timedelta(seconds=rng.randrange(366 * 24 * 3600))
        if rng.random() < 0.5:
            start = start.astimezone(cal.tz)
        minutes = rng.randrange(60 * 24 * 14 + 1)
        due = add_business_minutes(cal, start, minutes)
        assert due.tzinfo is UTC
        assert due >= start
        assert business_seconds_between(cal, start, due) == minutes * 60
        if minutes:
            # The deadline is the *first* such moment: a second earlier is not enough, and
            # the last business second before it lies inside business hours.
            earlier = due - timedelta(seconds=1)
            assert business_seconds_between(cal, start, earlier) == minutes * 60 - 1
            assert is_business_time(cal, earlier)
        else:
            assert due == next_opening(cal, start)


# --------------------------------------------------------------------------- first_response_due


@pytest.mark.parametrize(
    ("mention_at", "minutes", "urgent", "urgent_calendar_time", "expected"),
    [
        # Fri 17:30 BST, urgent, calendar time: due 18:30 BST the same evening
        (ldn(2026, 6, 5, 17, 30), 60, True, True, utc(2026, 6, 5, 17, 30)),
        # ... not urgent: waits for Monday 10:00 BST
        (ldn(2026, 6, 5, 17, 30), 60, False, True, utc(2026, 6, 8, 9, 0)),
        # ... urgent but the config counts business time for everything
        (ldn(2026, 6, 5, 17, 30), 60, True, False, utc(2026, 6, 8, 9, 0)),
        (ldn(2026, 6, 5, 17, 30), 60, False, False, utc(2026, 6, 8, 9, 0)),
        # Saturday, urgent: two days of calendar minutes run through the weekend
        (ldn(2026, 6, 6, 10, 0), 60 * 48, True, True, utc(2026, 6, 8, 9, 0)),
        # Calendar time is elapsed time: 00:30 GMT + 60 on 29 Mar is 01:30 UTC (02:30 BST)
        (ldn(2026, 3, 29, 0, 30), 60, True, True, utc(2026, 3, 29, 1, 30)),
        # ... and 01:30 BST + 60 on 25 Oct is 01:30 GMT (01:30 UTC)
        (ldn(2026, 10, 25, 1, 30), 60, True, True, utc(2026, 10, 25, 1, 30)),
        # Within hours, business and calendar time agree
        (ldn(2026, 6, 1, 10, 0), 60, True, True, utc(2026, 6, 1, 10, 0)),
        (ldn(2026, 6, 1, 10, 0), 60, False, True, utc(2026, 6, 1, 10, 0)),
    ],
)
def test_first_response_due(
    mention_at: datetime,
    minutes: int,
    urgent: bool,
    urgent_calendar_time: bool,
    expected: datetime,
) -> None:
    due = first_response_due(
        OFFICE, mention_at, minutes, urgent=urgent, urgent_calendar_time=urgent_calendar_time
    )
    assert due == expected
    assert due.tzinfo is UTC


def test_first_response_due_from_config(tmp_path: Path) -> None:
    config = make_config(tmp_path, business_hours="08:00-20:00", business_days=["mon", "sat"])
    cal = BusinessCalendar.from_config(config)
    minutes = config.departments[0].first_response_minutes  # default 60
    # Thu 4 Jun 19:30 BST: next business day is Sat 6 Jun, opens 08:00 BST = 07:00 UTC
    due = first_response_due(
        cal,
        ldn(2026, 6, 4, 19, 30),
        minutes,
        urgent=False,
        urgent_calendar_time=config.sla.urgent_calendar_time,
    )
    assert due == utc(2026, 6, 6, 8, 0)
    urgent_due = first_response_due(
        cal,
        ldn(2026, 6, 4, 19, 30),
        minutes,
        urgent=True,
        urgent_calendar_time=config.sla.urgent_calendar_time,
    )
    assert urgent_due == utc(2026, 6, 4, 19, 30)
