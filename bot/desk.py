"""The care desk's rules, surface-neutral (issue 14): saved replies and their variables,
tag rules applied at ingest, VIP authors, and the case_tags table.

Pure functions over the config, plus small helpers that run inside the caller's write
transaction (so a case and its tags are stored together, or not at all).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

import regex
from sqlite_utils import Database

from bot import audit
from bot.config import Config
from bot.desk_config import TAG, TAG_MAX, VARIABLE, SavedReply, TagRule, VipSection
from bot.models import (
    UNNAMED_FACEBOOK_AUTHOR,
    Actor,
    Case,
    Classification,
    Intent,
    Mention,
    Priority,
    shows_handle,
)
from bot.routing import _keyword_pattern as keyword_pattern
from bot.store import Store
from bot.views import ManagerRef, SavedReplyChoice

log = logging.getLogger(__name__)

VIP_TAG = "vip"
# A tag rule's regex runs on whatever a stranger posts: a careless pattern such as
# `(a|aa)+$` backtracks for hours on the right text. The `regex` module can stop a
# search; one that runs this long counts as no match (and is logged) so ingest goes on.
REGEX_TIMEOUT_SECONDS = 0.1
_TAG = re.compile(TAG)
# First names are cut at spaces, dots and underscores ("ana.lopez" -> "Ana").
_NAME_BREAK = re.compile(r"[\s._]+")
# A letter, then letters, digits, combining marks (Devanagari and Thai vowel signs, a
# decomposed accent: "प्रिया" is not "प"), apostrophes and hyphens.
_LETTERS = regex.compile(r"\p{L}[\w\p{M}'’-]*")

# ------------------------------------------------------------------ tags


def is_tag(name: str) -> bool:
    """Lower-case words joined by hyphens, at most TAG_MAX characters."""
    return len(name) <= TAG_MAX and bool(_TAG.fullmatch(name))


def parse_tag_changes(words: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
    """`+refund -spam #late` -> (add, remove, bad words); a word without a sign adds."""
    add: list[str] = []
    remove: list[str] = []
    bad: list[str] = []
    for word in words:
        sign, name = (word[0], word[1:]) if word[:1] in "+-" else ("+", word.lstrip("#"))
        if not is_tag(name):
            bad.append(word)
        elif sign == "-":
            remove.append(name)
        else:
            add.append(name)
    return list(dict.fromkeys(add)), list(dict.fromkeys(remove)), bad


@lru_cache(maxsize=256)
def _regex(pattern: str) -> regex.Pattern[str]:
    # Case-insensitive, as keywords are: "(?-i:...)" turns that off where it matters.
    return regex.compile(pattern, regex.IGNORECASE)


def _regex_matches(rule: TagRule, text: str) -> bool:
    if rule.regex is None:
        return True
    try:
        return bool(_regex(rule.regex).search(text, timeout=REGEX_TIMEOUT_SECONDS))
    except TimeoutError:
        log.warning(
            "tag rule %r: its regex timed out after %.1f s on a %d-character post and counts"
            " as not matching; simplify the pattern (nested repeats backtrack)",
            rule.tag,
            REGEX_TIMEOUT_SECONDS,
            len(text),
        )
        return False


def rule_matches(rule: TagRule, mention: Mention, reading: Classification) -> bool:
    """Whether every condition the rule gives holds for this mention."""
    followers = mention.author_followers or 0
    checks = [
        not rule.keywords or any(keyword_pattern(k).search(mention.text) for k in rule.keywords),
        _regex_matches(rule, mention.text),
        not rule.intents or reading.intent in rule.intents,
        not rule.networks or mention.network in rule.networks,
        not rule.languages or reading.language in rule.languages,
        rule.min_followers is None or followers >= rule.min_followers,
    ]
    return all(checks)


def is_vip(vip: VipSection, mention: Mention) -> bool:
    """Any one [vip] criterion makes an author a VIP: a listed handle (bare, or
    `network:handle` for one network only), enough followers, or (with verified = true)
    a verified account."""
    handle = mention.author_handle.lower()
    if handle in vip.handles or f"{mention.network}:{handle}" in vip.handles:
        return True
    if vip.min_followers is not None and (mention.author_followers or 0) >= vip.min_followers:
        return True
    return vip.verified and mention.author_verified


def with_vip(config: Config, mention: Mention, reading: Classification) -> Classification:
    """A VIP's reading: at least `high` priority (an `urgent` one stays urgent)."""
    if not is_vip(config.vip, mention):
        return reading
    raised = reading.priority in (Priority.NORMAL, Priority.LOW)
    return replace(
        reading,
        priority=Priority.HIGH if raised else reading.priority,
        signals=(*reading.signals, "vip author"),
    )


def ingest_tags(config: Config, mention: Mention, reading: Classification) -> list[str]:
    """The tags a new case gets: every matching rule's, and `vip` for a VIP author."""
    tags = [rule.tag for rule in config.tag_rules if rule_matches(rule, mention, reading)]
    if is_vip(config.vip, mention):
        tags.append(VIP_TAG)
    return sorted(set(tags))


def add_tags(
    db: Database, case_id: int, tags: Iterable[str], *, by: str, now: datetime
) -> list[str]:
    """Inside a write transaction: the tags that were not there yet, now added."""
    added = []
    for tag in tags:
        cursor = db.execute(
            "INSERT INTO case_tags (case_id, tag, added_by, added_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (case_id, tag) DO NOTHING",
            (case_id, tag, by, now.isoformat()),
        )
        if cursor.rowcount:
            added.append(tag)
    return added


def remove_tags(db: Database, case_id: int, tags: Iterable[str]) -> list[str]:
    """Inside a write transaction: the tags that were there, now removed."""
    removed = []
    for tag in tags:
        cursor = db.execute("DELETE FROM case_tags WHERE case_id = ? AND tag = ?", (case_id, tag))
        if cursor.rowcount:
            removed.append(tag)
    return removed


def tag_joined(
    db: Database,
    config: Config,
    case_id: int,
    mention: Mention,
    reading: Classification,
    now: datetime,
) -> list[str]:
    """Inside the ingest transaction: a follow-up joined to an open case adds the tags its
    own words earn (a later "refund" tags the case too); audited when it adds any."""
    added = add_tags(db, case_id, ingest_tags(config, mention, reading), by="rule", now=now)
    if added:
        audit.append(
            db,
            at=now,
            actor="system:socialcare",
            action="tag",
            case_id=case_id,
            detail={"added": added, "removed": [], "mention_id": mention.id},
        )
    return added


def tags_of(db: Database, case_id: int) -> list[str]:
    return [
        str(row[0])
        for row in db.execute("SELECT tag FROM case_tags WHERE case_id = ? ORDER BY tag", [case_id])
    ]


def case_ids_tagged(db: Database, tag: str) -> set[int]:
    return {int(row[0]) for row in db.execute("SELECT case_id FROM case_tags WHERE tag = ?", [tag])}


def tag_counts(store: Store, case_ids: list[int]) -> dict[str, int]:
    """How many of these cases carry each tag."""
    counts: dict[str, int] = {}
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start : start + 500]
        marks = ",".join("?" for _ in chunk)
        for row in store.query(
            f"SELECT tag, COUNT(*) AS n FROM case_tags WHERE case_id IN ({marks}) GROUP BY tag",
            chunk,
        ):
            counts[row["tag"]] = counts.get(row["tag"], 0) + int(row["n"])
    return counts


def top_tags(store: Store, case_ids: list[int], limit: int = 8) -> list[tuple[str, int]]:
    """The most used tags on these cases, most first (ties by name)."""
    counts = tag_counts(store, case_ids)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


# ------------------------------------------------------------------ saved replies


def saved_reply(config: Config, reply_id: str) -> SavedReply | None:
    return next((r for r in config.saved_replies if r.id == reply_id), None)


def saved_replies_for(config: Config, department: str, intent: Intent) -> list[SavedReply]:
    """The picker's choices: replies open to the department and the intent, the ones
    written for this department first, then the general ones, each in config order."""
    fitting = [
        r
        for r in config.saved_replies
        if (not r.departments or department in r.departments)
        and (not r.intents or intent in r.intents)
    ]
    return sorted(fitting, key=lambda r: not r.departments)


def first_name(name: str | None) -> str | None:
    """The first word of a name that has letters ("Maya López" -> "Maya")."""
    for part in _NAME_BREAK.split(unicodedata.normalize("NFC", (name or "").strip())):
        match = _LETTERS.match(part)
        if match:
            word = str(match.group(0))
            return word[:1].upper() + word[1:] if word.islower() else word
    return None


def agent_first_name(config: Config, actor: Actor) -> str:
    """{agent_first_name}: the [[people]] name, else the name the surface gave, else the
    brand (a reply signed "Acme Air" reads right; an id never appears in public)."""
    return (
        first_name(config.display_name(actor.user_id))
        or first_name(actor.name)
        or (config.bot.brand)
    )


def fill(text: str, values: Mapping[str, str]) -> str:
    """Each {variable} replaced once (a customer's name holding "{case}" stays as typed)."""
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def saved_reply_values(
    config: Config,
    *,
    case_id: int,
    handle: str,
    author_name: str,
    actor: Actor,
    network: str = "x",
) -> dict[str, str]:
    # Facebook's "handle" is a page-scoped id: printed in a public reply it reads as
    # "@7391847239012345". There a reply notifies its author without an @, so both
    # variables greet by first name (or "there").
    # Instagram gives a username and no name (the name is the username): a first name
    # guessed from "acme_fan_2000" would greet "Acme", so a name that is the handle is none;
    # nor is the label of a Facebook author Meta does not name ("Hi Facebook").
    if author_name.strip() in (handle.strip(), UNNAMED_FACEBOOK_AUTHOR):
        author_name = ""
    at_handle = f"@{handle}" if shows_handle(network) else (first_name(author_name) or "there")
    return {
        "first_name": first_name(author_name) or at_handle,
        "handle": at_handle,
        "case": str(case_id),
        "agent_first_name": agent_first_name(config, actor),
        "brand": config.bot.brand,
    }


# ------------------------------------------------------------------ cards


def card_extras(
    config: Config, db: Database, case: Case
) -> tuple[list[str], list[SavedReplyChoice], list[ManagerRef]]:
    """What the desk adds to a card: tags, the saved-reply picker's choices, and the
    managers a VIP's case calls in (the department's, as each surface can address them)."""
    tags = tags_of(db, case.id)
    choices = [
        SavedReplyChoice(r.id, r.title, dedicated=bool(r.departments))
        for r in saved_replies_for(config, case.department, case.intent)
    ]
    managers: list[ManagerRef] = []
    dept = config.department(case.department)
    if VIP_TAG in tags and dept is not None:
        managers = [
            ManagerRef(
                slack=config.account_on(entry, "slack"),
                teams=config.account_on(entry, "teams"),
                name=config.display_name(entry) or entry,
            )
            for entry in dept.managers
        ]
    return tags, choices, managers
