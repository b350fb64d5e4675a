"""Checks every outgoing reply must pass before anyone can approve it.

Length is X's weighted count (URLs 23, CJK and emoji 2) from twitter-text-parser,
a port of X's own twitter-text rules. Mentions follow twitter-text's rules too
(twitter/twitter-text, Apache-2.0), which that port leaves out.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

MAX_WEIGHTED = 280
_SCHEME = re.compile(r"\b[a-z][a-z0-9+.-]*://|\bwww\.", re.IGNORECASE)

# twitter-text's validMentionOrList: what may precede the at sign (X also takes the
# full-width ＠, and "RT" glued to it), a screen name of up to 20, an optional list slug.
_MENTION = re.compile(
    r"(?:^|[^a-zA-Z0-9_!#$%&*@＠]|(?:^|[^a-zA-Z0-9_+~.-])(?:rt|RT|rT|Rt):?)"
    r"[@＠]([a-zA-Z0-9_]{1,20})(/[a-zA-Z][a-zA-Z0-9_-]{0,24})?"
)
# twitter-text's endMentionMatch: followed by these it is an email, a URL or a longer word.
_MENTION_END = re.compile(
    r"[@＠\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    r"\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff]|://"
)

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties): drawn as nothing, so a
# reader never sees them; with categories Cf and Cc this covers bidi controls, tags,
# zero-width characters, variation selectors and Hangul fillers.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_ZWJ, _ZWNJ, _VS15, _VS16 = "\u200d", "\u200c", "\ufe0e", "\ufe0f"
# The only RGI emoji that use tags: the flags of England, Scotland and Wales.
_TAG_FLAGS = re.compile(
    "|".join(
        "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in region) + "\U000e007f"
        for region in ("gbeng", "gbsct", "gbwls")
    )
)


class MentionSpan(NamedTuple):
    """A mention or list as X extracts it; list_slug is "" or "/slug", end is exclusive."""

    screen_name: str
    list_slug: str
    start: int
    end: int


def extract_mentions_or_lists(text: str) -> list[MentionSpan]:
    """Mentions and lists (@name/slug) exactly as twitter-text extracts them."""
    found: list[MentionSpan] = []
    for match in _MENTION.finditer(text):
        if not _MENTION_END.match(text, match.end()):
            start = match.start(1) - 1
            found.append(MentionSpan(match[1], match[2] or "", start, match.end()))
    return found


def extract_mentions(text: str) -> list[str]:
    """Screen names X would mention (and notify), in order, as twitter-text extracts them."""
    return [m.screen_name for m in extract_mentions_or_lists(text) if not m.list_slug]


def _pictograph(ch: str) -> bool:  # "" (no neighbour) is not
    # Emoji blocks (also their unassigned code points: newer emoji than this Python knows)
    # and the older symbols (☠, ❤, ⚕, ➡, ↔...) that RGI ZWJ sequences use.
    return "\U0001f000" <= ch <= "\U0001faff" or (
        ch >= "\u2000" and unicodedata.category(ch) in ("So", "Sm")
    )


def _emoji_before(text: str, i: int) -> bool:
    # The emoji left of a ZWJ may end with a skin tone or the emoji presentation selector.
    if i > 1 and (text[i - 1] == _VS16 or "\U0001f3fb" <= text[i - 1] <= "\U0001f3ff"):
        i -= 1
    return i > 0 and _pictograph(text[i - 1])


def _joining_letter(ch: str) -> bool:  # "" (no neighbour) is not
    # Scripts such as Persian or Devanagari need ZWJ/ZWNJ between letters and marks; Latin never.
    return (
        ch >= "\u0370"
        and unicodedata.category(ch)[0] in "LM"
        and "LATIN" not in unicodedata.name(ch, "")
    )


def invisible_characters(text: str) -> list[str]:
    """Characters X posts but a reader cannot see, as "U+XXXX (NAME)", each once, in order."""
    flags = {i for m in _TAG_FLAGS.finditer(text) for i in range(m.start() + 1, m.end())}
    found: dict[str, None] = {}
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if ch == "\n" or i in flags or (category not in ("Cf", "Cc") and not _IGNORABLE.match(ch)):
            continue
        before, after = text[i - 1 : i], text[i + 1 : i + 2]
        if ch in (_VS15, _VS16) and before.strip() and before not in (_VS15, _VS16):
            continue  # text or emoji presentation of what precedes it, once
        if ch == _ZWJ and _emoji_before(text, i) and _pictograph(after):
            continue  # an emoji ZWJ sequence such as 👩‍💻
        if ch in (_ZWJ, _ZWNJ) and _joining_letter(before) and _joining_letter(after):
            continue  # as in Persian می‌خواهم
        name = unicodedata.name(ch, "") or (
            "CONTROL CHARACTER" if category == "Cc" else "UNASSIGNED CODE POINT"
        )
        found[f"U+{ord(ch):04X} ({name})"] = None
    return list(found)


def has_link(text: str) -> bool:
    """Whether the text carries a link: any scheme or www., or what X itself would link
    (twitter-text's rules, which know bare domains such as acme-refunds.info)."""
    from twitter_text import extract_urls

    return bool(_SCHEME.search(text)) or bool(extract_urls(text))


def weighted_length(text: str) -> int:
    # Imported here: twitter_text builds large emoji tables at import (~0.5 s of start-up).
    from twitter_text import parse_tweet

    return int(parse_tweet(text).weightedLength)


# Bluesky handles are domain names; Mastodon's are user or user@instance.
_BLUESKY_MENTION = re.compile(
    r"(?:^|(?<=[\s(\[{\"']))@([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,})"
)
_MASTODON_MENTION = re.compile(
    r"(?:^|(?<=[^\w/@]))@([a-zA-Z0-9_]+(?:@[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?)?)"
)
# Instagram usernames: letters, digits, "." and "_", up to 30. Facebook tags a person or a
# page in Graph text as @[id]; a plain "@name" there is just text.
_INSTAGRAM_MENTION = re.compile(r"(?:^|(?<=[^\w.@]))@([A-Za-z0-9._]{1,30})(?<!\.)")
_FACEBOOK_TAG = re.compile(r"@\[(\d+)(?::[^\]]*)?\]")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
DEFAULT_LIMITS = {
    "x": MAX_WEIGHTED,
    "bluesky": 300,
    "mastodon": 500,
    "facebook": 8000,
    "instagram": 2200,
}
_NAMES = {
    "x": "X",
    "bluesky": "Bluesky",
    "mastodon": "Mastodon",
    "facebook": "Facebook",
    "instagram": "Instagram",
}
# Replies there sit under the comment they answer and notify its author without an @.
THREADED_NETWORKS = frozenset({"facebook", "instagram"})


def starts_with_handle(network: str) -> bool:
    """Whether a reply on `network` opens with the author's @handle (drafts get it added).
    Not on Facebook: people have names there, not handles, and "@" tags by id."""
    return network != "facebook"


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters), as Bluesky counts them."""
    import regex

    return len(regex.findall(r"\X", text))


def mastodon_length(text: str) -> int:
    """Mastodon's count: every URL is 23 characters, a mention counts only `@user`."""
    text = _URL.sub("x" * 23, text)
    text = _MASTODON_MENTION.sub(lambda m: "@" + m.group(1).split("@")[0], text)
    return len(text)


def reply_length(text: str, network: str) -> int:
    if network == "bluesky":
        return graphemes(text)
    if network == "mastodon":
        return mastodon_length(text)
    if network in THREADED_NETWORKS:
        return len(text)  # Meta counts characters; a link is as long as it is
    return weighted_length(text)


def _same_account(mentioned: str, author: str, network: str) -> bool:
    mentioned, author = mentioned.lower(), author.lower()
    if network == "mastodon" and "@" not in mentioned:
        # @maya on maya's own instance; an account is user@instance.
        return mentioned == author.split("@")[0]
    return mentioned == author


def mentioned_accounts(text: str, network: str) -> list[str]:
    """Accounts a reply would mention on `network`, by that network's own rules."""
    if network == "bluesky":
        return _BLUESKY_MENTION.findall(text)
    if network == "mastodon":
        return _MASTODON_MENTION.findall(text)
    if network == "instagram":
        return _INSTAGRAM_MENTION.findall(text)
    if network == "facebook":
        return _FACEBOOK_TAG.findall(text)
    # A list (@owner/slug) notifies nobody but still points at another account.
    return [m.screen_name for m in extract_mentions_or_lists(text)]


def check_reply(
    text: str,
    *,
    author_handle: str,
    forbidden: list[str] | tuple[str, ...] = (),
    network: str = "x",
    limit: int | None = None,
) -> list[str]:
    """Problems with a reply text on `network`, each a short phrase; empty when it may be
    approved. `limit` overrides the network's length limit (a Mastodon instance's own)."""
    problems: list[str] = []
    if not text.strip() or text.strip().lower() == f"@{author_handle}".lower():
        return ["it is empty"]
    # Cards show the text without these, but the network posts them: what a manager
    # approved could read differently (a right-to-left override turns 15 into 51) or
    # carry hidden text.
    hidden = invisible_characters(text)
    if len(hidden) == 1:
        problems.append(f"it contains an invisible character {hidden[0]}; remove it")
    elif hidden:
        problems.append(f"it contains invisible characters {', '.join(hidden)}; remove them")
    most = limit or DEFAULT_LIMITS.get(network, MAX_WEIGHTED)
    length = reply_length(text, network)
    if length > most:
        name = _NAMES.get(network, network)
        problems.append(
            f"it is {length} characters as {name} counts them, {length - most} over the"
            f" limit of {most}"
        )
    mentioned = mentioned_accounts(text, network)
    others = sorted({h for h in mentioned if not _same_account(h, author_handle, network)})
    if others:
        problems.append("it mentions other accounts (" + ", ".join(f"@{h}" for h in others) + ")")
    addressed = (
        extract_mentions(text) if network == "x" else mentioned
    )  # on X, a list is not an address
    if network not in THREADED_NETWORKS and not any(
        _same_account(h, author_handle, network) for h in addressed
    ):
        problems.append(f"it does not address @{author_handle}")
    lowered = text.lower()
    hits = [phrase for phrase in forbidden if phrase.strip() and phrase.lower() in lowered]
    if hits:
        problems.append("it uses forbidden phrase(s): " + ", ".join(repr(h) for h in hits))
    return problems
