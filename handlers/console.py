"""The local demo surface: cards rendered in the terminal, `/care` typed at a prompt.

Same service, same commands and the same outbox as Slack: only the rendering differs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.commands import run_command
from bot.digest import Digest
from bot.models import Actor, CaseState
from bot.ports import MessageRef
from bot.reports import format_duration
from bot.service import CareService
from bot.views import CaseView

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


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "none"
    delta = (moment - now).total_seconds()
    when = "in " if delta >= 0 else "overdue by "
    return f"{moment:%a %H:%M} UTC ({when}{format_duration(abs(delta))})"


def render_card(view: CaseView, *, now: datetime, compact: bool = False) -> Panel:
    """A terminal card showing what the Slack card shows."""
    case = view.case
    author = view.author
    followers = f"{author.followers:,} followers" if author.followers is not None else ""
    verified = " ✔ verified" if author.verified else ""
    header = Text.assemble(
        (f"#{case.id} ", "bold"),
        (case.state.value, STATE_STYLE[case.state]),
        f"  {view.department_name}  ·  ",
        (f"{escape(author.name)} @{author.handle}", "bold"),
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
        ids = ", ".join(f"#{g.case_id} @{g.handle}" for g in view.grouped[:10])
        parts.append(Text(f"{len(view.grouped)} similar mention(s) grouped here: {ids}"))
    if compact:
        # Spam and trolls: the short form, with Dismiss offered first.
        actions = BUTTONS[case.state]
        first = [b for b in actions if b == "Dismiss"] + [b for b in actions if b != "Dismiss"]
        if first:
            parts.append(Text("  ".join(f"[ {b} ]" for b in first), style="bold"))
        return Panel(Group(*parts), border_style="dim")  # type: ignore[arg-type]
    parts.append(Text(f"Routed: {case.route_reason}", style="dim"))
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
        parts.append(Text(f"Claimed by {case.claimed_by}"))
    if case.draft_text:
        parts.append(Text(f"Draft by {case.draft_by}: {case.draft_text}", style="cyan"))
    if case.note:
        parts.append(Text(f"Note: {case.note}", style="yellow"))
    if case.published_url:
        parts.append(Text(f"Published: {case.published_url}", style="green"))
    buttons = BUTTONS[case.state]
    if view.paused and case.state is CaseState.APPROVED:
        parts.append(Text("Publishing is paused: this reply goes out on resume.", style="yellow"))
    if buttons:
        parts.append(Text("  ".join(f"[ {b} ]" for b in buttons), style="bold"))
    return Panel(Group(*parts), border_style=STATE_STYLE[case.state].replace("bold ", ""))  # type: ignore[arg-type]


class ConsoleSurface:
    """A ChatSurface that prints to the terminal; channels are `#department`."""

    name = "console"

    def __init__(self, console: Console, now: Callable[[], datetime]) -> None:
        self.console = console
        self.now = now

    def channel_for(self, department_id: str) -> str | None:
        return f"#{department_id}"

    def post_card(self, channel: str, view: object) -> MessageRef:
        assert isinstance(view, CaseView)
        self.console.print(f"[dim]{channel} · new card[/dim]")
        self.console.print(
            render_card(view, now=self.now(), compact=view.case.intent.value == "spam")
        )
        return MessageRef(channel, str(view.case.id))

    def update_card(self, ref: MessageRef, view: object) -> None:
        assert isinstance(view, CaseView)
        self.console.print(f"[dim]{ref.channel} · card #{view.case.id} updated[/dim]")
        self.console.print(render_card(view, now=self.now()))

    def post_note(self, ref: MessageRef, text: str) -> None:
        self.console.print(
            f"[dim]{ref.channel} · thread of card #{ref.message_id}:[/dim] {escape(text)}"
        )

    def target(self, to: str) -> str | None:
        if to.startswith("user:"):
            return f"@{to.removeprefix('user:')}"
        return f"#{to}"

    def notify(self, channel: str, text: str) -> None:
        self.console.print(f"[dim]{channel}:[/dim] {escape(text)}")

    def send_digest(self, channel: str, digest: object) -> None:
        from handlers.slack_digest import digest_text

        assert isinstance(digest, Digest)
        self.console.print(f"[dim]{channel} · digest[/dim]")
        self.console.print(Panel(escape(digest_text(digest)), title=escape(digest.title)))


def audit_table(rows: list[dict[str, object]], title: str = "Audit trail") -> Table:
    table = Table(title=title)
    for column in ("seq", "at", "actor", "action", "outcome", "case", "text hash"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["seq"]),
            str(row["at"])[:19],
            str(row["actor"]),
            str(row["action"]),
            str(row["outcome"]),
            f"#{row['case_id']}" if row["case_id"] else "",
            str(row["text_hash"] or "")[:12],
        )
    return table


def run_line(service: CareService, actor: Actor, line: str) -> tuple[bool, str]:
    """Run a typed `/care ...` line; (ok, text to show)."""
    command = service.config.bot.slash_command
    line = line.strip()
    if line.startswith(command):
        line = line[len(command) :]
    reply = run_command(service, actor, line, command=command)
    return reply.ok, reply.text
