"""Which department owns a mention, and why. Pure functions over the config.

Rules are tried in this order, first match wins, departments in config order within
each rule: listed author (VIPs, journalists) > network > language > keyword > intent >
default.
The most specific signal wins: a listed journalist complaining goes to the press desk,
a Spanish complaint to the Spanish team, a "refund" keyword beats a bare intent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from bot.config import Config, Department
from bot.models import Classification, Mention, Route


@lru_cache(maxsize=4096)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # Whole words in any case: "refund" matches "Refund?" but not "refunded";
    # a trailing * matches any ending ("refund*" matches both).
    escaped = re.escape(keyword.strip().lower()).replace(r"\*", r"\w*")
    return re.compile(rf"(?<!\w){escaped}(?!\w)", re.IGNORECASE)


def keyword_hit(dept: Department, text: str) -> str | None:
    for keyword in dept.keywords:
        if _keyword_pattern(keyword).search(text):
            return keyword
    return None


def route(config: Config, mention: Mention, reading: Classification) -> Route:
    """The department for this mention, with a one-line reason a person can check."""
    handle = mention.author_handle.lower()
    rules: list[Callable[[Department], str | None]] = [
        lambda d: f"author @{mention.author_handle} is listed" if handle in d.authors else None,
        lambda d: f"network {mention.network}" if mention.network in d.networks else None,
        lambda d: f"language {reading.language!r}" if reading.language in d.languages else None,
        lambda d: f"keyword {kw!r}" if (kw := keyword_hit(d, mention.text)) else None,
        lambda d: f"intent {reading.intent.value}" if reading.intent in d.intents else None,
    ]
    for rule in rules:
        for dept in config.departments:
            why = rule(dept)
            if why:
                return Route(department=dept.id, reason=f"{why} for {dept.name}")
    default = config.default_department
    return Route(
        department=default.id,
        reason=f"no rule matched; {default.name} is the default department",
    )
