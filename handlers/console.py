"""The local demo surface: cards rendered in the terminal, `/care` typed at a prompt.

Same service, same commands and the same outbox as Slack: only the rendering differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.bulk import untouched
from bot.caselist import typeable
from bot.commands import CommandReply, run_command
from bot.digest import Digest
from bot.models import Actor, CaseState, shows_handle
from bot.ports import MessageRef
from bot.reports import format_duration
from bot.service import SHOWN_HASH_PREFIX, CareService
from bot.views import CaseView
from handlers.slack_cards import (
    BUTTON_TEXT,
    USE_REPLY_STATES,
    card_actions,
    hidden_status,
    private_notice,
)

#: Slack's user markup, which the domain's notes and answers use: `<@U0AGENT1>`, `<@W123|jo>`.
USER_MARKUP = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
#: The approval prompt offers a button; the terminal has none, only the code to type.
APPROVE_BUTTON_HINT = "click Approve or type"

STATE_STYLE = {
    CaseState.NEW: "bold yellow",
    CaseState.CLAIMED: "bold cyan",
    CaseState.AWAITING_APPROVAL: "bold magenta",
    CaseState.APPROVED: "bold blue",
    CaseState.PUBLISHED: "bold green",
    CaseState.DISMISSED: "dim",
    CaseState.FAILED: "bold red",
}

BUTTONS = {
    CaseState.NEW: ["Claim", "Dismiss", "Reassign"],
    CaseState.CLAIMED: ["Edit reply", "Submit for approval", "Dismiss", "Reassign"],
    CaseState.AWAITING_APPROVAL: ["Approve", "Reject", "Edit reply"],
    CaseState.APPROVED: [],
    CaseState.PUBLISHED: [],
    CaseState.DISMISSED: [],
    CaseState.FAILED: ["Retry", "Edit reply", "Dismiss"],
}


def _meta_buttons(view: CaseView) -> list[str]:
    """Facebook/Instagram cases also offer Reply privately and Hide comment (as on Slack)."""
    extra = [
        a
        for a in card_actions(view.case)
        if a in ("reply_private", "hide_comment", "unhide_comment")
    ]
    return [BUTTON_TEXT[a] for a in extra]


def person(user_id: str, names: Mapping[str, str] | None = None) -> str:
    """A user id as the person's name (the id itself when the name is not known)."""
    return (names or {}).get(user_id) or user_id


def show_people(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack's `<@U…>`/`<@W…>` markup in staff-facing text as people's names.

    Only for what the bot and staff write (notes, answers, routing reasons): a customer's
    own words are shown exactly as they were posted, markup and all.
    """
    known = names or {}
    return USER_MARKUP.sub(lambda m: known.get(m.group(1)) or m.group(2) or m.group(1), text)


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "none"
    delta = (moment - now).total_seconds()
    when = "in " if delta >= 0 else "overdue by "
    return f"{moment:%a %H:%M} UTC ({when}{format_duration(abs(delta))})"


def desk_lines(view: CaseView, names: Mapping[str, str] | None = None) -> list[Text]:
    """Tags, the VIP call to the managers, and the saved replies this case can use."""
    lines = []
    if view.tags:
        lines.append(Text("Tags: " + " ".join(f"#{t}" for t in view.tags), style="cyan"))
    if view.vip_managers:
        who = ", ".join(person(m.slack or m.name, names) for m in view.vip_managers)
        lines.append(Text(f"VIP author: for {who}", style="bold yellow"))
    if view.saved_replies and view.case.state in USE_REPLY_STATES:
        ids = " ".join(f":{r.id}" for r in view.saved_replies[:10])
        lines.append(Text(f"Saved replies: {ids}  (/care reply {view.case.id} :ID)", style="dim"))
    return lines


def render_card(
    view: CaseView,
    *,
    now: datetime,
    compact: bool = False,
    names: Mapping[str, str] | None = None,
) -> Panel:
    """A terminal card showing what the Slack card shows; staff appear by name."""
    case = view.case
    author = view.author
    followers = f"{author.followers:,} followers" if author.followers is not None else ""
    verified = " ✔ verified" if author.verified else ""
    header = Text.assemble(
        (f"#{case.id} ", "bold"),
        (case.state.value, STATE_STYLE[case.state]),
        f"  {view.department_name}  ·  ",
        (
            f"{escape(author.name)} @{author.handle}"
            if shows_handle(case.network) or not author.name
            else escape(author.name),
            "bold",
        ),
        f"  {followers}{verified}",
    )
    reading = (
        f"{case.intent.value} · {case.sentiment.value} · priority {case.priority.value}"
        f" · {case.language} · {'needs reply' if case.needs_reply else 'no reply needed'}"
    )
    parts: list[object] = [
        header,
        Text(view.text[:500], style="italic"),
        Text(reading, style="dim"),
    ]
    if view.grouped:
        at = shows_handle(case.network)  # Facebook "handles" are page-scoped ids
        ids = ", ".join(
            f"#{g.case_id}" + (f" @{g.handle}" if at else "") for g in view.grouped[:10]
        )
        parts.append(Text(f"{len(view.grouped)} similar mention(s) grouped here: {ids}"))
        waiting = untouched(view)
        if waiting:
            # The terminal has no buttons: the command that does "Dismiss all N similar".
            parts.append(
                Text(
                    f"Dismiss all {len(waiting)} similar: /care dismiss {typeable(waiting)} REASON",
                    style="bold",
                )
            )
    parts.extend(desk_lines(view, names))
    if compact:
        # Spam and trolls: the short form, with Dismiss offered first.
        actions = BUTTONS[case.state]
        first = [b for b in actions if b == "Dismiss"] + [b for b in actions if b != "Dismiss"]
        if first:
            parts.append(Text("  ".join(f"[ {b} ]" for b in first), style="bold"))
        return Panel(Group(*parts), border_style="dim")  # type: ignore[arg-type]
    parts.append(Text(f"Routed: {show_people(case.route_reason, names)}", style="dim"))
    if case.needs_reply and case.state not in {CaseState.PUBLISHED, CaseState.DISMISSED}:
        parts.append(Text(f"SLA first response due {_when(case.sla_due_at, now)}"))
    if view.url:
        parts.append(Text(f"Post: {view.url}", style="link"))
    for post in view.thread:
        parts.append(Text(f"  ↳ {post.text[:200]}", style="italic"))
    if view.earlier:
        lines = [
            f"#{e.case_id} {e.created_at:%d %b} {e.intent} ({e.state}): {e.text[:60]}"
            for e in view.earlier
        ]
        parts.append(Text("Earlier contacts:\n  " + "\n  ".join(lines), style="dim"))
    for number, suggestion in enumerate(view.suggestions, start=1):
        parts.append(Text(f"AI-suggested reply {number}: {suggestion}", style="green"))
    if case.claimed_by:
        parts.append(Text(f"Claimed by {person(case.claimed_by, names)}"))
    if case.draft_text:
        author_name = person(case.draft_by, names) if case.draft_by else "?"
        kind = f"Private reply ({private_notice(case)})" if case.draft_private else "Draft"
        parts.append(Text(f"{kind} by {author_name}: {case.draft_text}", style="cyan"))
    if case.note:
        parts.append(Text(f"Note: {show_people(case.note, names)}", style="yellow"))
    if case.published_url:
        done = "Replied privately" if case.draft_private else "Published"
        parts.append(Text(f"{done}: {case.published_url}", style="green"))
    hidden = hidden_status(case, person(case.hidden_by or "?", names))
    if hidden:
        parts.append(Text(hidden, style="magenta"))
    buttons = BUTTONS[case.state] + _meta_buttons(view)
    if view.paused and case.state is CaseState.APPROVED:
        parts.append(Text("Publishing is paused: this reply goes out on resume.", style="yellow"))
    if buttons:
        parts.append(Text("  ".join(f"[ {b} ]" for b in buttons), style="bold"))
    return Panel(Group(*parts), border_style=STATE_STYLE[case.state].replace("bold ", ""))  # type: ignore[arg-type]


class ConsoleSurface:
    """A ChatSurface that prints to the terminal; channels are `#department`.

    `names` maps user ids to the names shown for them (the demo's users); without it, ids
    are shown bare. Either way, what the bot and staff write reaches the terminal without
    Slack's `<@U…>` markup; the public's words are shown as they were posted.
    """

    name = "console"

    def __init__(
        self,
        console: Console,
        now: Callable[[], datetime],
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.console = console
        self.now = now
        self.names: Mapping[str, str] = names or {}

    def people(self, text: str) -> str:
        return show_people(text, self.names)

    def channel_for(self, department_id: str) -> str | None:
        return f"#{department_id}"

    def post_card(self, channel: str, view: object) -> MessageRef:
        assert isinstance(view, CaseView)
        self.console.print(f"[dim]{channel} · new card[/dim]")
        self.console.print(
            render_card(
                view,
                now=self.now(),
                compact=view.case.intent.value == "spam",
                names=self.names,
            )
        )
        return MessageRef(channel, str(view.case.id))

    def update_card(self, ref: MessageRef, view: object) -> None:
        assert isinstance(view, CaseView)
        self.console.print(f"[dim]{ref.channel} · card #{view.case.id} updated[/dim]")
        self.console.print(render_card(view, now=self.now(), names=self.names))

    def post_note(self, ref: MessageRef, text: str) -> None:
        self.console.print(
            f"[dim]{ref.channel} · thread of card #{ref.message_id}:[/dim]"
            f" {escape(self.people(text))}"
        )

    def target(self, to: str) -> str | None:
        if to.startswith("user:"):
            return f"@{to.removeprefix('user:')}"
        return f"#{to}"

    def notify(self, channel: str, text: str) -> None:
        self.console.print(f"[dim]{channel}:[/dim] {escape(self.people(text))}")

    def send_digest(self, channel: str, digest: object) -> None:
        from handlers.slack_digest import digest_text

        assert isinstance(digest, Digest)
        self.console.print(f"[dim]{channel} · digest[/dim]")
        # The digest quotes the public's words and names no staff: shown as it is.
        self.console.print(Panel(escape(digest_text(digest)), title=escape(digest.title)))

    def answer(self, reply: CommandReply) -> None:
        """A `/care` answer, as Slack shows it to the one who typed it (ephemeral)."""
        text = self.people(reply.text)
        if reply.approval is not None:
            text = text.replace(APPROVE_BUTTON_HINT, "type")
        if reply.ok:
            self.console.print(f"[green]{escape(text)}[/green]")
        else:
            self.console.print(f"[red](only you can see this) {escape(text)}[/red]")


def _actor(actor: str, names: Mapping[str, str] | None) -> str:
    """`slack:U0AGENT1` as the person's name; the bot's own entries as `socialcare` etc."""
    surface, _, who = actor.partition(":")
    if not who:
        return actor
    return who if surface == "system" else person(who, names)


def _outcome(outcome: str) -> str:
    # "refused:wrong_state" -> "refused: wrong state", so a narrow column wraps between words.
    kind, _, why = outcome.partition(":")
    return f"{kind}: {why.replace('_', ' ')}" if why else outcome


def audit_table(
    rows: list[dict[str, object]],
    title: str = "Audit trail",
    names: Mapping[str, str] | None = None,
) -> Table:
    """The audit entries, readable at 80 columns: nothing that matters is cut off.

    Times are UTC; when all entries share a day it goes in the title and the column shows
    the time of day only. The text hash column shows the code an approver types back.
    """
    moments = [datetime.fromisoformat(str(row["at"])).astimezone(UTC) for row in rows]
    days = {moment.date() for moment in moments}
    one_day = len(days) == 1
    if one_day:
        title = f"{title}, {next(iter(days)):%a %d %b %Y} (UTC)"
    # Light rules, no outer edge and one space between columns: 80 columns are enough.
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    table.add_column("seq", justify="right", no_wrap=True)
    table.add_column("time" if one_day else "time (UTC)", no_wrap=True)
    for column in ("actor", "action", "outcome"):
        table.add_column(column, overflow="fold")
    table.add_column("case", no_wrap=True)
    table.add_column("text hash", no_wrap=True)
    for row, moment in zip(rows, moments, strict=True):
        table.add_row(
            str(row["seq"]),
            f"{moment:%H:%M:%S}" if one_day else f"{moment:%d %b %H:%M:%S}",
            _actor(str(row["actor"]), names),
            str(row["action"]),
            _outcome(str(row["outcome"])),
            f"#{row['case_id']}" if row["case_id"] else "",
            str(row["text_hash"] or "")[:SHOWN_HASH_PREFIX],
        )
    return table


def run_line(service: CareService, actor: Actor, line: str) -> CommandReply:
    """Run a typed `/care ...` line; `ConsoleSurface.answer` shows the reply."""
    command = service.config.bot.slash_command
    line = line.strip()
    if line.startswith(command):
        line = line[len(command) :]
    return run_command(service, actor, line, command=command)
