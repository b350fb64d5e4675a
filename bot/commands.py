"""The `/care` slash command, parsed once for every surface (Slack, Teams, the demo).

`run_command()` returns the text to show the user; refusals come back as
`CommandReply(ok=False)`, so a surface can show them privately (ephemeral).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import desk_commands
from bot.bulk import run_list
from bot.caselist import is_case_list, parse_case_list, split_refs
from bot.claimnext import next_answer
from bot.errors import Refusal
from bot.meta_rules import private_channel
from bot.models import Actor, Case, CaseState
from bot.reports import format_duration, kpis
from bot.service import SHOWN_HASH_PREFIX, CareService

SUBCOMMANDS: dict[str, str] = {
    "help": "show this help",
    "queue [department] [tag:TAG]": "open cases of a department (or all), with state, age"
    " and owner; tag:TAG shows only cases with that tag",
    "next": "claim the most urgent unclaimed case in your departments",
    "claim N": "claim case N so nobody else answers the same person",
    "reply N TEXT": "set the reply draft of case N and submit it for approval",
    "reply N :ID": "use saved reply ID (see `saved`) as the draft and submit it for approval",
    "reply-private N TEXT": "the same, as a private message (Facebook Messenger / Instagram"
    " Direct) instead of a public reply; one per comment, within 7 days of it",
    "saved": "list the saved replies: id, title and the start of the text",
    "tag N +TAG -TAG": "add or remove tags of case N (lower-case words and hyphens)",
    "approve N [PREFIX]": "show the reply of case N and its code; with the code, approve"
    " exactly those words (managers)",
    "reject N REASON": "send the reply of case N back to its author with a note (managers)",
    "dismiss N REASON": "close case N without a reply",
    "hide N REASON": "hide the Facebook/Instagram comment of case N (managers)",
    "unhide N": "show the hidden comment of case N again (managers)",
    "stats [today|week]": "volume, replies and response times",
    "pause": "stop all publishing at once (admins)",
    "resume": "publish again, queued replies first (admins)",
    "settle N published URL|not-posted": "end the check of a publish whose outcome the"
    " network will not tell: it is out at URL, or nothing was posted (admins)",
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
    # A surface may offer a "Claim next" button with this answer (the queue's).
    offer_next: bool = False


# Commands that take a list or range of cases (`12,14,20-25`); each case on its own merits.
LIST_COMMANDS = frozenset({"claim", "dismiss", "reject", "hide", "unhide", "tag"})
# Bound to exact words for one person: never more than one case at a time.
SINGLE_ONLY = {
    "approve": "an approval is bound to the exact words of one reply; approve each case on"
    " its own, e.g. `{command} approve 12`.",
    "reply": "a reply is written to one person; name one case, e.g. `{command} reply 12 TEXT`.",
    "reply-private": "a private reply is written to one person; name one case, e.g."
    " `{command} reply-private 12 TEXT`.",
}


def help_text(command: str = "/care") -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [f"`{command} {name.ljust(width)}`  {what}" for name, what in SUBCOMMANDS.items()]
    return (
        "Commands (N is the case number on the card, e.g. 12 or #12; claim, dismiss and reject"
        " also take lists and ranges, e.g. 12,14,20-25):\n" + "\n".join(lines)
    )


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
    if name in LIST_COMMANDS | SINGLE_ONLY.keys() and is_case_list(split_refs(rest)[0]):
        return _list_command(service, actor, name, rest, command)
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
        waiting = any(c.state.value == "new" for c in cases)
        return CommandReply(
            "\n".join([title, *(_case_line(c, now) for c in cases[:50])]), offer_next=waiting
        )
    if name == "next":
        if rest.strip():
            raise Refusal(f"Usage: {command} next", code="usage")
        text, case_id = next_answer(service, actor)
        return CommandReply(text, case_id=case_id)
    if name == "claim":
        ref, _ = _split_case(rest, f"{command} claim N")
        case = service.claim(actor, ref)
        return CommandReply(f"You claimed case #{case.id}.", case_id=case.id)
    if name in {"reply", "reply-private"}:
        private = name == "reply-private"
        ref, body = _split_case(rest, f"{command} {name} N TEXT", needs_text=True)
        saved_id = desk_commands.saved_reply_id(body)
        if saved_id is not None:
            case = desk_commands.reply_saved(service, actor, ref, saved_id, private=private)
        else:
            case = service.reply(actor, ref, body, private=private)
        kind = f"Private reply ({private_channel(case.network)})" if private else "Reply"
        return CommandReply(
            f"{kind} for case #{case.id} submitted for approval:\n> {case.draft_text}",
            case_id=case.id,
        )
    if name == "hide":
        ref, reason = _split_case(rest, f"{command} hide N REASON", needs_text=True)
        case = service.hide(actor, ref, reason)
        return CommandReply(f"Hiding the comment of case #{case.id}: {reason}", case_id=case.id)
    if name == "unhide":
        ref, _ = _split_case(rest, f"{command} unhide N")
        case = service.unhide(actor, ref)
        return CommandReply(f"Showing the comment of case #{case.id} again.", case_id=case.id)
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
    if name == "settle":
        ref, tail = _split_case(rest, f"{command} settle N published URL|not-posted")
        outcome, _, url = tail.strip().partition(" ")
        case = service.settle(actor, ref, outcome, url)
        return CommandReply(
            f"Case #{case.id} settled: "
            + (
                f"published at {case.published_url}."
                if case.state is CaseState.PUBLISHED
                else "not posted; it is failed and can be retried."
            ),
            case_id=case.id,
        )
    raise Refusal(f"Unknown command {name!r}. Try `{command} help`.", code="usage")


def _list_command(
    service: CareService, actor: Actor, name: str, rest: str, command: str
) -> CommandReply:
    """`claim|dismiss|reject 12,14,20-25 [REASON]`: each case done or refused on its own
    (and audited on its own), one summary answer."""
    refs, reason = split_refs(rest)
    try:
        if name in SINGLE_ONLY:
            raise Refusal(
                f"`{name}` takes one case at a time: " + SINGLE_ONLY[name].format(command=command),
                code="usage",
            )
        if reason.startswith(","):
            raise Refusal(
                "A list of cases cannot end with a comma; e.g. `12,14,20-25`.", code="usage"
            )
        case_ids = parse_case_list(refs)
    except Refusal as refusal:
        service._audit_refusal(actor, name, refusal, ref=refs)
        raise
    if name not in {"claim", "unhide"} and not reason.strip():
        what = "+TAG -TAG" if name == "tag" else "REASON"
        raise Refusal(f"Usage: {command} {name} N,N,N-M {what}", code="usage")
    outcome = run_list(service, actor, name, case_ids, reason)
    return CommandReply(outcome.summary(), ok=bool(outcome.done))


def _approval_prompt(service: CareService, actor: Actor, ref: str, command: str) -> CommandReply:
    """The exact words first: an approval is bound to what the approver saw."""
    case = service.approval_prompt(actor, ref)
    assert case.draft_text is not None and case.draft_hash is not None
    digest = case.draft_hash  # covers the kind too: public words cannot be sent privately
    code = digest[:SHOWN_HASH_PREFIX]
    quoted = "\n".join(f"> {line}" for line in case.draft_text.splitlines() or [""])
    how = (
        f"exactly as it would be sent as a private {private_channel(case.network)} message"
        " (not posted publicly)"
        if case.draft_private
        else "exactly as it would be posted"
    )
    return CommandReply(
        f"{'Private reply' if case.draft_private else 'Reply'} of case #{case.id},"
        f" by <@{case.draft_by}>, {how}:\n"
        f"{quoted}\n"
        f"To publish exactly these words, click Approve or type"
        f" `{command} approve {case.id} {code}`.",
        case_id=case.id,
        approval=ApprovalPrompt(case.id, case.draft_text, digest),
    )
