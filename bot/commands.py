"""The `/care` slash command, parsed once for every surface (Slack, Teams, the demo).

`run_command()` returns the text to show the user; refusals come back as
`CommandReply(ok=False)`, so a surface can show them privately (ephemeral).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import desk_commands
from bot.errors import Refusal
from bot.models import Actor, Case, text_hash
from bot.reports import format_duration, kpis
from bot.service import SHOWN_HASH_PREFIX, CareService

SUBCOMMANDS: dict[str, str] = {
    "help": "show this help",
    "queue [department] [tag:TAG]": "open cases of a department (or all), with state, age"
    " and owner; tag:TAG shows only cases with that tag",
    "claim N": "claim case N so nobody else answers the same person",
    "reply N TEXT": "set the reply draft of case N and submit it for approval",
    "reply N :ID": "use saved reply ID (see `saved`) as the draft and submit it for approval",
    "saved": "list the saved replies: id, title and the start of the text",
    "tag N +TAG -TAG": "add or remove tags of case N (lower-case words and hyphens)",
    "approve N [PREFIX]": "show the reply of case N and its code; with the code, approve"
    " exactly those words (managers)",
    "reject N REASON": "send the reply of case N back to its author with a note (managers)",
    "dismiss N REASON": "close case N without a reply",
    "stats [today|week]": "volume, replies and response times",
    "pause": "stop all publishing at once (admins)",
    "resume": "publish again, queued replies first (admins)",
}


@dataclass(frozen=True)
class ApprovalPrompt:
    """`approve N` without a code: the exact words, for a surface to offer an Approve
    button bound to their hash."""

    case_id: int
    text: str
    text_hash: str


@dataclass(frozen=True)
class CommandReply:
    text: str
    ok: bool = True
    case_id: int | None = None
    approval: ApprovalPrompt | None = None


def help_text(command: str = "/care") -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [f"`{command} {name.ljust(width)}`  {what}" for name, what in SUBCOMMANDS.items()]
    return "Commands (N is the case number on the card, e.g. 12 or #12):\n" + "\n".join(lines)


def _age(case: Case, now: datetime) -> str:
    return format_duration((now - (case.mention_at or case.created_at)).total_seconds())


def _case_line(case: Case, now: datetime) -> str:
    owner = f"<@{case.claimed_by}>" if case.claimed_by else "unclaimed"
    return (
        f"{'#' + str(case.id):>5}  {case.state.value:<17} {case.priority.value:<6}"
        f" {case.intent.value:<10} {case.network:<8}"
        f" {_age(case, now):>12}  {owner}"
    )


def run_command(
    service: CareService, actor: Actor, text: str, *, command: str = "/care"
) -> CommandReply:
    """Parse and run one `/care ...` command line for `actor`."""
    words = text.strip().split(maxsplit=1)
    name = words[0].lower() if words else "help"
    rest = words[1] if len(words) > 1 else ""
    try:
        return _dispatch(service, actor, name, rest, command)
    except Refusal as refusal:
        return CommandReply(str(refusal), ok=False)


def _split_case(rest: str, usage: str, *, needs_text: bool = False) -> tuple[str, str]:
    parts = rest.split(maxsplit=1)
    if not parts or (needs_text and len(parts) < 2):
        raise Refusal(f"Usage: {usage}", code="usage")
    return parts[0], parts[1] if len(parts) > 1 else ""


def _dispatch(
    service: CareService, actor: Actor, name: str, rest: str, command: str
) -> CommandReply:
    now = service.clock.now()
    if name == "help":
        return CommandReply(help_text(command))
    if name == "queue":
        department, tag = desk_commands.queue_filter(rest)
        cases = service.queue(department, actor=actor)
        if tag is not None:
            cases = desk_commands.with_tag(service, cases, tag)
        where = f" in {department}" if department else ""
        tagged = f" tagged {tag}" if tag else ""
        title = f"Open cases{where}{tagged}: {len(cases)}"
        return CommandReply("\n".join([title, *(_case_line(c, now) for c in cases[:50])]))
    if name == "claim":
        ref, _ = _split_case(rest, f"{command} claim N")
        case = service.claim(actor, ref)
        return CommandReply(f"You claimed case #{case.id}.", case_id=case.id)
    if name == "reply":
        ref, body = _split_case(rest, f"{command} reply N TEXT", needs_text=True)
        saved_id = desk_commands.saved_reply_id(body)
        if saved_id is not None:
            case = desk_commands.reply_saved(service, actor, ref, saved_id)
        else:
            case = service.reply(actor, ref, body)
        return CommandReply(
            f"Reply for case #{case.id} submitted for approval:\n> {case.draft_text}",
            case_id=case.id,
        )
    if name == "approve":
        ref, code = _split_case(rest, f"{command} approve N [PREFIX]")
        if not code.strip():
            return _approval_prompt(service, actor, ref, command)
        case = service.approve(actor, ref, expected_hash=code.strip())
        if service.is_paused():
            return CommandReply(
                f"Approved case #{case.id}. Publishing is paused: the reply waits until"
                f" an admin runs `{command} resume`.",
                case_id=case.id,
            )
        return CommandReply(
            f"Approved case #{case.id}; it will be published shortly.", case_id=case.id
        )
    if name in {"reject", "dismiss"}:
        ref, reason = _split_case(rest, f"{command} {name} N REASON", needs_text=True)
        case = (
            service.reject(actor, ref, reason)
            if name == "reject"
            else service.dismiss(actor, ref, reason)
        )
        return CommandReply(f"Case #{case.id} {name}ed: {reason}", case_id=case.id)
    if name in desk_commands.COMMANDS:
        text, case_id = desk_commands.run(service, actor, name, rest, command)
        return CommandReply(text, case_id=case_id)
    if name == "stats":
        period = rest.strip().lower() or "today"
        if period not in {"today", "week"}:
            raise Refusal(f"Usage: {command} stats [today|week]", code="usage")
        local = now.astimezone(service.config.tz)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if period == "week":
            start -= timedelta(days=local.weekday())
        mine = service.departments_of(actor, "stats")
        k = kpis(service.store, since=start, until=now + timedelta(seconds=1), departments=mine)
        rate = f"{k.response_rate:.0%}" if k.response_rate is not None else "n/a"
        return CommandReply(
            f"Since {start:%a %d %b %H:%M}: {k.received} mentions, {k.needs_reply} needed a reply,"
            f" {k.replied} replied ({rate}), {k.dismissed} dismissed, {k.open} open."
            f" First response: median {format_duration(k.median_first_response_s)},"
            f" p90 {format_duration(k.p90_first_response_s)}."
        )
    if name in {"pause", "resume"}:
        service.set_paused(actor, name == "pause")
        return CommandReply(
            "Publishing paused: approved replies wait until `resume`."
            if name == "pause"
            else "Publishing resumed: queued replies go out now."
        )
    raise Refusal(f"Unknown command {name!r}. Try `{command} help`.", code="usage")


def _approval_prompt(service: CareService, actor: Actor, ref: str, command: str) -> CommandReply:
    """The exact words first: an approval is bound to what the approver saw."""
    case = service.approval_prompt(actor, ref)
    assert case.draft_text is not None
    digest = text_hash(case.draft_text)
    code = digest[:SHOWN_HASH_PREFIX]
    quoted = "\n".join(f"> {line}" for line in case.draft_text.splitlines() or [""])
    return CommandReply(
        f"Reply of case #{case.id}, by <@{case.draft_by}>, exactly as it would be posted:\n"
        f"{quoted}\n"
        f"To publish exactly these words, click Approve or type"
        f" `{command} approve {case.id} {code}`.",
        case_id=case.id,
        approval=ApprovalPrompt(case.id, case.draft_text, digest),
    )
