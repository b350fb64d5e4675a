"""Checks every outgoing reply must pass before anyone can approve it.

Length is X's weighted count (URLs 23, CJK and emoji 2) from twitter-text-parser,
a port of X's own twitter-text rules.
"""

from __future__ import annotations

import re

MAX_WEIGHTED = 280
_SCHEME = re.compile(r"\b[a-z][a-z0-9+.-]*://|\bwww\.", re.IGNORECASE)
# X also turns the full-width ＠ into a mention.
_HANDLE = re.compile(r"(?<![\w@＠])[@＠](\w{1,15})\b")


def has_link(text: str) -> bool:
    """Whether the text carries a link: any scheme or www., or what X itself would link
    (twitter-text's rules, which know bare domains such as acme-refunds.info)."""
    from twitter_text import extract_urls

    return bool(_SCHEME.search(text)) or bool(extract_urls(text))


def weighted_length(text: str) -> int:
    # Imported here: twitter_text builds large emoji tables at import (~0.5 s of start-up).
    from twitter_text import parse_tweet

    return int(parse_tweet(text).weightedLength)


def check_reply(
    text: str, *, author_handle: str, forbidden: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """Problems with a reply text, each a short phrase; empty when it may be approved."""
    problems: list[str] = []
    if not text.strip() or text.strip().lower() == f"@{author_handle}".lower():
        return ["it is empty"]
    length = weighted_length(text)
    if length > MAX_WEIGHTED:
        problems.append(
            f"it is {length} characters as X counts them, {length - MAX_WEIGHTED} over the"
            f" limit of {MAX_WEIGHTED}"
        )
    others = sorted({h for h in _HANDLE.findall(text) if h.lower() != author_handle.lower()})
    if others:
        problems.append("it mentions other accounts (" + ", ".join(f"@{h}" for h in others) + ")")
    if author_handle.lower() not in {h.lower() for h in _HANDLE.findall(text)}:
        problems.append(f"it does not address @{author_handle}")
    lowered = text.lower()
    hits = [phrase for phrase in forbidden if phrase.strip() and phrase.lower() in lowered]
    if hits:
        problems.append("it uses forbidden phrase(s): " + ", ".join(repr(h) for h in hits))
    return problems
