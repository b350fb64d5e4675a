"""Case lists and ranges in commands: `12,14,20-25`, `#12, #14`, `#20-#25`.

Pure parsing, no I/O. A list is refused whole (a usage error naming the bad part) before
any case is touched, so a typo never half-runs a bulk action.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.errors import Refusal

# One bulk command touches at most this many cases: a slip like `1-9000` must not
# dismiss a month of work.
MAX_CASES = 100

_ITEM = re.compile(r"#?(\d{1,9})(?:-#?(\d{1,9}))?")


def is_case_list(ref: str) -> bool:
    """Whether a reference names more than one case (a comma or a range)."""
    return "," in ref or "-" in ref.strip().lstrip("#")


def split_refs(rest: str) -> tuple[str, str]:
    """`"12, 14,20-25 spam wave"` -> `("12, 14,20-25", "spam wave")`.

    The leading references are words without spaces joined by commas (spaces allowed
    around a comma), ending at the last non-empty word: `"1,2,"` -> `("1,2", ",")`.
    A scan, not a regex: the pattern this replaces backtracked exponentially on
    `1 , , , …`, and anyone who can type the command could stall the bot with it.
    """
    n = len(rest)
    i = _skip_spaces(rest, 0)
    start, end = i, None  # end: just after the last non-empty word so far
    while True:
        j = i
        while j < n and rest[j] != "," and not rest[j].isspace():
            j += 1
        if j > i:
            end = j
        k = _skip_spaces(rest, j)
        if k < n and rest[k] == ",":
            i = _skip_spaces(rest, k + 1)
            continue
        break
    if end is None:
        return "", rest.strip()
    return rest[start:end], rest[end:].strip()


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def parse_case_list(text: str, *, limit: int = MAX_CASES) -> list[int]:
    """The case numbers `text` names, in the order given, each once.

    Raises Refusal(code="usage") for an empty item, junk, a backwards range, or more
    than `limit` cases.
    """
    numbers: list[int] = []
    seen: set[int] = set()
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.fullmatch(item)
        if match is None:
            what = f"{item!r} is not" if item else "an empty item is not"
            raise Refusal(
                f"{what} a case number or range; write numbers and ranges separated by"
                " commas, e.g. `12,14,20-25`.",
                code="usage",
            )
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            raise Refusal(
                f"The range {item} runs backwards; write it low to high: {high}-{low}.",
                code="usage",
            )
        if low == 0:
            raise Refusal("There is no case #0; case numbers start at 1.", code="usage")
        if high - low + 1 > limit:
            raise _too_many(limit)
        for number in range(low, high + 1):
            if number not in seen:
                seen.add(number)
                numbers.append(number)
        if len(numbers) > limit:
            raise _too_many(limit)
    return numbers


def _too_many(limit: int) -> Refusal:
    return Refusal(
        f"That names more than {limit} cases; one command acts on at most {limit}.",
        code="usage",
    )


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted runs of consecutive numbers as (first, last); runs shorter than three are
    split into single numbers (a range of two reads worse than the two numbers)."""
    ordered = sorted(set(numbers))
    runs: list[tuple[int, int]] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start >= 2:
            runs.append((ordered[start], ordered[end]))
        else:
            runs.extend((n, n) for n in ordered[start : end + 1])
        start = end + 1
    return runs


def compact(numbers: Iterable[int]) -> str:
    """`[12, 14, 20, 21, 22, 23]` -> `"#12, #14, #20–#23"`, for people to read."""
    return ", ".join(f"#{a}" if a == b else f"#{a}–#{b}" for a, b in _runs(numbers))


def typeable(numbers: Iterable[int]) -> str:
    """`[12, 14, 20, 21, 22, 23]` -> `"12,14,20-23"`, as a command takes it."""
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in _runs(numbers))
