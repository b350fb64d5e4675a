"""`socialcare demo`: the whole workflow in a terminal, no tokens, no network.

Part of the composition root (it wires the console surface to the service).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from rich.console import Console
from rich.markup import escape

from bot import audit
from bot.config import Config, load_config
from bot.delivery import ChatWorker, DryRunPublisher, PublishWorker
from bot.jsonl import read_mentions
from bot.models import Actor, Mention
from bot.moderation import DryRunModerator, ModerationWorker
from bot.ports import MessageRef, SystemClock
from bot.service import SHOWN_HASH_PREFIX, CareService
from bot.store import Store
from bot.views import CaseView
from handlers.console import ConsoleSurface, audit_table, run_line


class DemoUser(NamedTuple):
    name: str
    role: str


DEMO_USERS = {
    "U0AGENT1": DemoUser("Jo", "agent in Customer Care"),
    "U0AGENT2": DemoUser("Ravi", "agent in Customer Care"),
    "U0LEAD": DemoUser("Morgan", "manager of Customer Care"),
    "U0MKT1": DemoUser("Ines", "marketer"),
    "U0MKTLEAD": DemoUser("Ada", "manager of Marketing"),
    "U0SALES1": DemoUser("Kai", "sales rep"),
    "U0SALESLEAD": DemoUser("Noor", "manager of Sales"),
    "U0ADMIN": DemoUser("Pat", "admin, may pause and resume"),
}
#: What the console shows for each demo user id (in notes, answers, cards and the audit).
DEMO_NAMES = {user_id: user.name for user_id, user in DEMO_USERS.items()}


def _sample(name: str) -> Path:
    return Path(str(resources.files("bot") / "samples" / name))


def sample_mentions(now: datetime | None = None) -> list[Mention]:
    """The bundled mentions; with `now`, moved in time so the newest arrived 2 minutes ago."""
    mentions = [
        m for _, m in read_mentions(_sample("demo_mentions.jsonl")) if isinstance(m, Mention)
    ]
    if now is None or not mentions:
        return mentions
    shift = now - timedelta(minutes=2) - max(m.created_at for m in mentions)
    return [m.model_copy(update={"created_at": m.created_at + shift}) for m in mentions]


class Demo:
    def __init__(self, console: Console, workdir: Path) -> None:
        config = load_config(_sample("demo.toml"))
        self.config: Config = config.model_copy(update={"base_dir": workdir})
        self.console = console
        clock = self.clock = SystemClock()
        self.store = Store(self.config.database_path)
        self.service = CareService(self.config, self.store, clock=clock)
        self.surface = ConsoleSurface(console, clock.now, names=DEMO_NAMES)
        self.chat = ChatWorker(self.service, self.surface)
        self.publisher = PublishWorker(self.service, DryRunPublisher(self.store, clock))
        self.moderation = ModerationWorker(self.service, DryRunModerator(self.store, clock))
        self.user = "U0AGENT1"

    def pump(self) -> None:
        """Deliver queued cards and publish approved replies, as the running bot would."""
        self.chat.drain()
        if self.publisher.drain() + self.moderation.drain():
            self.chat.drain()

    def ingest_samples(self) -> None:
        stats = self.service.ingest_many(sample_mentions(self.clock.now()))
        self.console.rule(f"[bold]{stats.created} sample mentions ingested and routed")
        self.pump()

    def do(self, user: str, line: str, *, echo: bool = True) -> bool:
        """Run one `/care` line as `user`; `echo` first shows who typed it (on one line).

        The interactive prompt passes `echo=False`: the line is on screen already.
        """
        if echo:
            known = DEMO_USERS.get(user)
            who = f"{known.name} ({user}, {known.role})" if known else f"{user} (unknown user)"
            self.console.print(f"\n[bold]{escape(who)}[/bold]> {escape(line)}", soft_wrap=True)
        reply = run_line(self.service, Actor(user, name=DEMO_NAMES.get(user)), line)
        self.surface.answer(reply)
        self.pump()
        return reply.ok

    def show_audit(self, case_id: int | None = None) -> bool:
        rows = (
            self.service.audit_trail(case_id)
            if case_id
            else self.store.query("SELECT * FROM audit ORDER BY seq")
        )
        self.console.print(
            audit_table(rows, f"Audit trail{f' of case #{case_id}' if case_id else ''}", DEMO_NAMES)
        )
        result = audit.verify(self.store.db)
        verdict = (
            "[green]intact[/green]"
            if result.ok
            else f"[red]TAMPERED at entry {result.first_bad_seq}[/red]"
        )
        self.console.print(f"Audit chain: {result.entries} entries, {verdict}")
        return result.ok

    def _approval_code(self, case_id: int) -> str:
        """The code `/care approve N` showed, as the manager would type it back."""
        return (self.service.get_case(case_id).draft_hash or "")[:SHOWN_HASH_PREFIX]

    def script(self) -> int:
        """Ingest -> claim -> reply -> approve -> publish (dry run), then show the audit trail."""
        self.ingest_samples()
        case = 1
        steps: list[tuple[str, str | Callable[[], str]]] = [
            ("U0AGENT1", f"/care claim {case}"),
            ("U0AGENT2", f"/care claim {case}"),  # refused: already claimed
            (
                "U0AGENT1",
                f"/care reply {case} Sorry for the long wait, Maya. Please DM us your booking"
                " reference and we will check your refund options straight away. - Jo",
            ),
            ("U0AGENT1", f"/care approve {case}"),  # refused: agents cannot approve
            ("U0LEAD", f"/care approve {case}"),  # shows the exact words and their code
            ("U0LEAD", lambda: f"/care approve {case} {self._approval_code(case)}"),
            ("U0LEAD", "/care dismiss 5 spam account"),  # the spam card, no reply needed
            ("U0AGENT1", "/care queue care"),
            ("U0LEAD", "/care stats today"),
        ]
        for user, line in steps:
            self.do(user, line if isinstance(line, str) else line())
        published = self.service.get_case(case)
        posts = self.store.query("SELECT * FROM dry_run_posts ORDER BY id")
        self.console.rule("[bold]What the dry-run publisher would have posted")
        for post in posts:
            self.console.print(f"in reply to {post['in_reply_to_id']}: {escape(post['text'])}")
        intact = self.show_audit(case)
        if published.state.value != "published" or len(posts) != 1 or not intact:
            self.console.print(
                "[red]The scripted demo did not reach a single published reply.[/red]"
            )
            return 1
        self.console.print(
            f"[green]Case #{case} published once (dry run): {published.published_url}[/green]"
        )
        return 0

    def interactive(self) -> int:
        self.ingest_samples()
        self.console.print(
            "\nType [bold]/care help[/bold] for commands. Also: [bold]as USER[/bold] to act as"
            " another demo user, [bold]users[/bold], [bold]show N[/bold], [bold]audit [N][/bold],"
            " [bold]digest[/bold], [bold]quit[/bold]."
        )
        self._users()
        # A terminal already shows what was typed; piped input is echoed after the prompt,
        # so a transcript reads the same. Either way each line appears once.
        echo = not sys.stdin.isatty()
        while True:
            try:
                line = self.console.input(
                    f"[bold]{escape(DEMO_NAMES.get(self.user, ''))} ({self.user})[/bold]> "
                ).strip()
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                return 0
            if echo:
                self.console.print(escape(line), soft_wrap=True)
            if not line:
                continue
            word, _, rest = line.partition(" ")
            if word in {"quit", "exit"}:
                return 0
            if word == "users":
                self._users()
            elif word == "as":
                if rest.strip() in DEMO_USERS:
                    self.user = rest.strip()
                else:
                    self.console.print(f"[red]Unknown demo user {escape(rest)!r}[/red]")
                    self._users()
            elif word == "show":
                try:
                    self.surface.update_card(*self._card(rest))
                except Exception as exc:  # noqa: BLE001 - any bad input is shown, the demo goes on
                    self.console.print(f"[red]{escape(str(exc))}[/red]")
            elif word == "digest":
                from bot.followup import FollowUp

                FollowUp(self.service).send_digests(self.clock.now())
                self.pump()
            elif word == "audit":
                self.show_audit(
                    int(rest.strip().lstrip("#")) if rest.strip().lstrip("#").isdigit() else None
                )
            else:
                self.do(
                    self.user,
                    line if line.startswith("/") else f"{self.config.bot.slash_command} {line}",
                    echo=False,
                )

    def _card(self, ref: str) -> tuple[MessageRef, CaseView]:
        view = self.service.view(ref.strip())
        return MessageRef(f"#{view.case.department}", str(view.case.id)), view

    def _users(self) -> None:
        width = max(len(user_id) for user_id in DEMO_USERS)
        self.console.print(
            "Demo users ([bold]as USER[/bold] to switch):\n"
            + "\n".join(
                f"  [bold]{user_id.ljust(width)}[/bold]  {user.name}, {user.role}"
                for user_id, user in DEMO_USERS.items()
            )
        )


def run_demo(*, script: bool, console: Console | None = None) -> int:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="socialcare-demo-") as workdir:
        demo = Demo(console, Path(workdir))
        try:
            return demo.script() if script else demo.interactive()
        finally:
            demo.store.close()
