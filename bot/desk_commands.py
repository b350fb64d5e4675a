"""The care desk's part of `/care`: `saved`, `tag N +a -b`, `reply N :id` and the
`tag:TAG` filter of `queue`. bot/commands.py dispatches here; answers are plain text."""

from __future__ import annotations

import re

from bot import desk, desk_service
from bot.errors import Refusal
from bot.models import Actor, Case
from bot.service import CareService

COMMANDS = frozenset({"saved", "tag"})
PREVIEW_CHARS = 80
_SAVED_REF = re.compile(r"^:([a-z0-9][a-z0-9_-]{0,39})$")
_TAG_FILTER = "tag:"


def saved_reply_id(body: str) -> str | None:
    """`:sorry` (alone) names a saved reply; any other text is the reply itself."""
    match = _SAVED_REF.fullmatch(body.strip())
    return match.group(1) if match else None


def reply_saved(
    service: CareService, actor: Actor, ref: str, reply_id: str, *, private: bool = False
) -> Case:
    return desk_service.reply_with_saved(service, actor, ref, reply_id, private=private)


def queue_filter(rest: str) -> tuple[str | None, str | None]:
    """`queue care tag:refund` -> ("care", "refund"); the tag filter may come first."""
    department: str | None = None
    tag: str | None = None
    for word in rest.split():
        if word.lower().startswith(_TAG_FILTER):
            tag = word[len(_TAG_FILTER) :].lower()
            if not desk.is_tag(tag):
                raise Refusal(
                    f"{word!r} is not a tag filter; write tag:NAME, e.g. tag:refund.",
                    code="usage",
                )
        elif department is None:
            department = word
        else:
            raise Refusal("Usage: queue [department] [tag:TAG]", code="usage")
    return department, tag


def with_tag(service: CareService, cases: list[Case], tag: str) -> list[Case]:
    tagged = desk.case_ids_tagged(service.store.db, tag)
    return [case for case in cases if case.id in tagged]


def run(
    service: CareService, actor: Actor, name: str, rest: str, command: str
) -> tuple[str, int | None]:
    """(answer, case id) for `saved` and `tag`; refusals are raised."""
    if name == "saved":
        return _saved(service, actor, command), None
    words = rest.split()
    if len(words) < 2:
        raise Refusal(f"Usage: {command} tag N +TAG -TAG", code="usage")
    change = desk_service.tag_command(service, actor, words[0], words[1:])
    case = change.case
    parts = [f"+{t}" for t in change.added] + [f"-{t}" for t in change.removed]
    tags = ", ".join(desk.tags_of(service.store.db, case.id)) or "none"
    return f"Case #{case.id} tags {' '.join(parts)}; now: {tags}.", case.id


def _saved(service: CareService, actor: Actor, command: str) -> str:
    mine = service.departments_of(actor, "saved")
    replies = [
        r
        for r in service.config.saved_replies
        if not r.departments or any(d in mine for d in r.departments)
    ]
    if not replies:
        return "No saved replies are set up ([[saved_replies]] in the config)."
    lines = [f"Saved replies ({len(replies)}); use one with `{command} reply N :ID`:"]
    for reply in replies:
        text = " ".join(reply.text.split())
        preview = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
        scope = [*reply.departments, *(i.value for i in reply.intents)]
        where = f" [{', '.join(scope)}]" if scope else ""
        lines.append(f":{reply.id}  {reply.title}{where} — {preview}")
    return "\n".join(lines)
