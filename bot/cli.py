"""The `socialcare` command line (also `python -m bot`). Part of the composition root.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config. Errors are one
line on stderr; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import __version__, audit
from bot.config import Config, load_config
from bot.errors import AlreadyRunning, ConfigError, SocialcareError
from bot.ports import SystemClock
from bot.service import CareService
from bot.storage import open_store

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(SocialcareError):
    """Bad command-line usage (exit 2)."""


AUDIT_USAGE = (
    "usage: socialcare audit verify [-c PATH] [--expect-head N:HASH]\n"
    "       socialcare audit head [-c PATH]"
)
STORE_USAGE = "usage: socialcare store copy --to URL [-c PATH]"


def _config_arg(parser: argparse.ArgumentParser) -> None:
    _debug_arg(parser)
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="config file (default: $SOCIALCARE_CONFIG, else ./socialcare.toml)",
    )


def _debug_arg(parser: argparse.ArgumentParser) -> None:
    # Accepted after the command too (`socialcare run --debug`); SUPPRESS keeps a global
    # --debug given before the command from being reset by the subparser's default.
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    details: str = "",
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand: `summary` in its parent's list, `summary` and `details` in its --help."""
    return sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{details}".strip(),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="JSONL file of mentions, one object per line"
    )


def _jsonl_epilog() -> str:
    from bot.jsonl import MAX_CLOCK_AHEAD, SOURCE_NETWORKS

    networks = ", ".join(SOURCE_NETWORKS)
    minutes = int(MAX_CLOCK_AHEAD.total_seconds() // 60)
    return f"""\
Mention JSONL: one object per line with
  network           {networks} (one of these)
  id                the post's id (a string; numbers are kept exact)
  author_id         the author's id
  author_handle     the author's handle (a leading @ is dropped)
  author_name       the author's display name
  text              the post's text
  created_at        ISO 8601 with a zone, e.g. 2026-11-22T09:00:00Z; not more
                    than {minutes} minutes ahead of this machine's clock
and optionally
  in_reply_to_id    the post it answers
  conversation_id   the conversation (thread) it belongs to
  url               link to the post
  author_followers  the author's follower count
  author_verified   true or false
  lang              language code, e.g. en

Bad lines are reported as FILE:LINE: problem; the valid lines are still used,
and the exit code is 1 if any line was bad. Lines of a network whose
[sources.NAME] is off are taken too (ingest notes that `run` cannot answer them)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="socialcare",
        description="Social customer care in chat: brand mentions become cards staff claim,"
        " managers approve, and the bot publishes exactly once.",
    )
    parser.add_argument("--version", action="version", version=f"socialcare {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="`socialcare COMMAND --help` for its options"
    )

    p = _command(
        sub,
        "run",
        "start the bot and run until SIGINT/SIGTERM",
        "HTTP server (Slack, Teams, the Meta webhook, /healthz), the network pollers,\n"
        "the LLM workers, the outbox workers and the scheduler. Credentials are checked\n"
        "first: a refused one exits 2 naming its variable; a service that cannot be\n"
        "reached starts the bot degraded (see /healthz). On SIGINT/SIGTERM each worker\n"
        "finishes the item in hand; exit 0.",
    )
    _config_arg(p)

    p = _command(
        sub,
        "demo",
        "local demo: sample mentions, cards in the terminal, no tokens",
        "Type /care commands as one of the demo users (`as U0LEAD` switches user).",
    )
    p.add_argument(
        "--script",
        action="store_true",
        help="play a full scenario (ingest, claim, reply, approve, publish) and exit",
    )
    _debug_arg(p)

    p = _command(
        sub,
        "check-config",
        "validate the config file; exit 2 if invalid",
        "One line per problem with its key path. Tokens missing from the environment\n"
        "are warnings, unless --strict.",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="also fail (exit 2) when a token that `run` needs is missing from the environment",
    )
    _config_arg(p)

    p = _command(
        sub,
        "ingest",
        "read mentions from a JSONL file through the pipeline",
        "Idempotent: a mention already stored is skipped.",
        epilog=_jsonl_epilog(),
    )
    _file_arg(p)
    _config_arg(p)

    p = _command(
        sub,
        "classify",
        "print each mention's reading and routing; changes nothing",
        "Use it to test routing rules before going live; touches no database.",
        epilog=_jsonl_epilog(),
    )
    _file_arg(p)
    p.add_argument(
        "--format",
        choices=["jsonl", "table"],
        default="jsonl",
        help="jsonl: one JSON object per mention (default); table: for reading",
    )
    _config_arg(p)

    p = _command(
        sub,
        "eval",
        "accuracy and macro-F1 of the offline classifier (and the LLM) on labelled mentions",
        "Each line: a mention plus any of `intent`, `sentiment`, `needs_reply` (true or\n"
        "false). Per labelled field: accuracy, macro-F1 and a confusion table, for the\n"
        "offline classifier and, when [llm] is enabled and OPENAI_API_KEY is set, for the\n"
        "LLM reading side by side (one call per line, as with read_everything; a failed\n"
        "call counts as the offline reading, as in the bot). Touches no database.",
        epilog=_jsonl_epilog(),
    )
    _file_arg(p)
    p.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="table (default) or one JSON object",
    )
    _config_arg(p)

    p = _command(
        sub,
        "digest",
        "build and send the digest for the last 24 hours now",
        "Every call sends. Printed to the terminal when Slack is off.",
    )
    p.add_argument(
        "--department",
        metavar="ID",
        help="only this department's digest (default: every department's and the managers')",
    )
    _config_arg(p)

    p = _command(
        sub,
        "report",
        "KPIs per department (or per network, per tag)",
        "Durations are in seconds in csv and json.",
    )
    p.add_argument(
        "--since",
        metavar="ISO8601",
        help="start (default: 7 days ago); without a zone, in [bot].timezone",
    )
    p.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (default), csv or json",
    )
    p.add_argument(
        "--by",
        choices=["department", "network", "tag"],
        default="department",
        help="one row per department (default), per network or per tag (a case with"
        " two tags counts in both rows)",
    )
    _config_arg(p)

    p = _command(
        sub,
        "audit",
        "audit log tools: verify the hash chain, print its head",
        "The log is hash-chained. Write down `audit head` somewhere else now and then\n"
        "(the managers' digest shows it); `audit verify --expect-head` then also\n"
        "catches a removed tail whose stored head was rewritten.",
    )
    audit_sub = p.add_subparsers(
        dest="audit_command", metavar="ACTION", help="`socialcare audit ACTION --help`"
    )
    v = _command(
        audit_sub,
        "verify",
        "check the audit log's hash chain; exit 1 if tampered",
        "Exit 0 intact, 1 tampered. With --expect-head N:HASH, the log must also still\n"
        "extend that witnessed head: entry N exists with that hash, and the chain\n"
        "verifies up to it and beyond.",
    )
    v.add_argument(
        "--expect-head",
        metavar="N:HASH",
        help="a head witnessed earlier (from `audit head` or a digest); the log must still"
        " hold entry N with that hash",
    )
    _config_arg(v)
    h = _command(
        audit_sub,
        "head",
        "print the chain head as N:HASH (entry count and hash of the last entry)",
        "Verifies the chain first: exit 1, printing nothing on stdout, if tampered.",
    )
    _config_arg(h)

    p = _command(
        sub,
        "store",
        "database tools: copy a SQLite database into PostgreSQL",
        "SQLite serves one `socialcare run`; PostgreSQL serves several. `store copy`\n"
        "moves a deployment's history from the one to the other.",
    )
    store_sub = p.add_subparsers(
        dest="store_command", metavar="ACTION", help="`socialcare store ACTION --help`"
    )
    c = _command(
        store_sub,
        "copy",
        "copy this SQLite database into an empty PostgreSQL database",
        "The source is the config's [bot].database (DATABASE_URL is not read here). Stop\n"
        "`socialcare run` first: the copy refuses a file a running bot holds. The target\n"
        "must hold no socialcare data; its schema is created if missing. Every table is\n"
        "copied in one transaction, values unchanged; numbering continues after the\n"
        "copied ids; row counts and the audit chain (same head) are checked before\n"
        "committing. On any failure nothing is committed (exit 1). Then point\n"
        "DATABASE_URL (or [bot].database) at the target.",
    )
    c.add_argument(
        "--to",
        metavar="URL",
        required=True,
        help="the empty target, postgresql://user@host:5432/dbname; a password in it is"
        " never printed (PGPASSWORD or ~/.pgpass keep it off the command line)",
    )
    _config_arg(c)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return _dispatch(args, parser)
    except ConfigError as exc:
        prefix = "error" if isinstance(exc, AlreadyRunning) else "config error"
        for problem in exc.problems:
            print(f"{prefix}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EvalAborted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    command = args.command
    if command == "demo":
        from bot.demo import run_demo

        return run_demo(script=args.script)
    if command == "audit":
        return _audit(args)
    if command == "store":
        return _store(args)
    config = load_config(args.config)
    if command == "check-config":
        return _check_config(config, strict=args.strict)
    if command == "ingest":
        return _ingest(config, args.file)
    if command == "classify":
        return _classify(config, args.file, args.format)
    if command == "eval":
        return _eval(config, args.file, args.format)
    if command == "report":
        return _report(config, args.since, args.format, args.by)
    if command == "run":
        from bot.config import Secrets
        from bot.logs import setup_logging
        from bot.runtime import run

        secrets = Secrets.from_env()
        setup_logging(level="DEBUG" if args.debug else "INFO", secrets=secrets.values())
        return run(config, secrets)
    if command == "digest":
        return _digest(config, args.department, debug=bool(getattr(args, "debug", False)))
    raise UsageError(f"unknown command {command}")


def _check_config(config: Config, *, strict: bool) -> int:
    """Validate; tokens `run` needs are warnings, or errors (exit 2) with --strict."""
    from bot.config import Secrets, missing_environment
    from bot.runtime import endpoint_problems

    secrets = Secrets.from_env()
    # What `socialcare run` refuses to start without: each missing variable once.
    needed = missing_environment(config, secrets) + endpoint_problems(secrets)
    if not config.publish.dry_run and not config.sources.x.user_id:
        needed.append("sources.x.user_id: the brand account's id is needed to publish to X")
    warnings: list[str] = []
    if config.llm.enabled and not secrets.openai_api_key:
        warnings.append("llm.enabled: OPENAI_API_KEY is not set; the bot will run offline")
    vip = config.vip  # a [vip] table that names nobody is a VIP rule that never fires
    if "vip" in config.model_fields_set and not (vip.min_followers or vip.verified or vip.handles):
        warnings.append("vip: no criterion (min_followers, verified, handles), so nobody is a VIP")
    for index, dept in enumerate(config.departments):
        if not dept.managers:
            warnings.append(
                f"departments[{index}].managers: {dept.id} has no managers; only admins can"
                " approve its replies"
            )
    if strict and needed:
        for problem in needed:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    for warning in [*needed, *warnings]:
        print(f"warning: {warning}", file=sys.stderr)
    count = len(config.departments)
    print(
        f"{config.bot.brand}: config valid ({count} department{'' if count == 1 else 's'},"
        f" database {_database_shown(config)})"
    )
    return EXIT_OK


def _database_shown(config: Config) -> str:
    """Where the commands will store: a SQLite path, or a PostgreSQL URL without its
    password (and whether DATABASE_URL chose it over the file)."""
    import os

    from bot.store_copy import mask_url

    target = config.database_target()
    if isinstance(target, Path):
        return str(target)
    source = " (DATABASE_URL)" if os.environ.get("DATABASE_URL") else ""
    return f"{mask_url(target)}{source}"


def _open_service(config: Config) -> CareService:
    import os

    # Mentions stored here get LLM work queued when the running bot has an LLM.
    ai = config.llm.enabled and bool(os.environ.get("OPENAI_API_KEY"))
    return CareService(
        config, open_store(config.database_target()), clock=SystemClock(), ai_enabled=ai
    )


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a JSONL file")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")


def _ingest(config: Config, path: Path) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from bot.jsonl import BadLine, count_lines, read_mentions
    from bot.models import Mention
    from bot.runtime import publishing_networks

    _require_file(path)
    service = _open_service(config)
    bad: list[BadLine] = []
    total = count_lines(path)
    created = joined = duplicates = 0
    answered, unanswered = publishing_networks(config), Counter[str]()
    err = Console(stderr=True)
    batch: list[Mention] = []
    with Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task("ingest", total=total)

        def flush() -> None:
            nonlocal created, joined, duplicates
            stats = service.ingest_many(batch)
            created += stats.created
            joined += stats.joined
            duplicates += stats.duplicates
            progress.advance(task, len(batch))
            batch.clear()

        for _, item in read_mentions(path, now=service.clock.now()):
            if isinstance(item, BadLine):
                bad.append(item)
                progress.advance(task)
                continue
            if item.network not in answered:
                unanswered[item.network] += 1
            batch.append(item)
            if len(batch) >= 200:
                flush()
        flush()
    service.store.close()
    for line in bad:
        print(f"{path}:{line.line}: {line.problem}", file=sys.stderr)
    print(
        f"{created} new cases, {joined} joined to open conversations, {duplicates} already stored,"
        f" {len(bad)} bad lines"
    )
    for network, count in unanswered.items():
        # Stored and shown like any case, but `run` has no credential to answer them with.
        print(
            f"note: {count} {network} mention(s) ingested while [sources.{network}] is off:"
            f" replies to them cannot be published until it is enabled (or dry_run = true)",
            file=sys.stderr,
        )
    return EXIT_FAILURE if bad else EXIT_OK


def _classify(config: Config, path: Path, fmt: str) -> int:
    from rich.table import Table

    from bot import desk
    from bot.classify import OfflineClassifier
    from bot.jsonl import BadLine, read_mentions
    from bot.routing import route

    _require_file(path)
    classifier = OfflineClassifier()
    table = Table(
        "id",
        "intent",
        "sentiment",
        "priority",
        "reply",
        "lang",
        "department",
        "reason",
        "signals",
        "tags",
    )
    bad = 0
    for number, item in read_mentions(path, now=SystemClock().now()):
        if isinstance(item, BadLine):
            print(f"{path}:{number}: {item.problem}", file=sys.stderr)
            bad += 1
            continue
        reading = desk.with_vip(config, item, classifier.classify(item))
        where = route(config, item, reading)
        tags = desk.ingest_tags(config, item, reading)
        record = {
            "id": item.id,
            "intent": reading.intent.value,
            "sentiment": reading.sentiment.value,
            "priority": reading.priority.value,
            "needs_reply": reading.needs_reply,
            "language": reading.language,
            "department": where.department,
            "reason": where.reason,
            "signals": list(reading.signals),
            "tags": tags,
        }
        if fmt == "jsonl":
            print(json.dumps(record, ensure_ascii=False))
        else:
            table.add_row(
                item.id,
                reading.intent.value,
                reading.sentiment.value,
                reading.priority.value,
                "yes" if reading.needs_reply else "no",
                reading.language,
                where.department,
                where.reason,
                "; ".join(reading.signals),
                " ".join(tags),
            )
    if fmt == "table":
        _table_console().print(table)
    return EXIT_FAILURE if bad else EXIT_OK


def _eval(config: Config, path: Path, fmt: str) -> int:
    from bot import evaluate
    from bot.classify import OfflineClassifier
    from bot.config import Secrets

    _require_file(path)
    items: list[evaluate.Labelled] = []
    bad = 0
    for number, item in evaluate.read_labelled(path, now=SystemClock().now()):
        if isinstance(item, evaluate.Labelled):
            items.append(item)
        else:
            print(f"{path}:{number}: {item.problem}", file=sys.stderr)
            bad += 1
    if not items:
        print(f"error: {path}: no labelled mentions to evaluate", file=sys.stderr)
        return EXIT_FAILURE
    classifier = OfflineClassifier()
    readers: dict[str, evaluate.Reader] = {"offline": evaluate.offline_reader(classifier)}
    llm: evaluate.LLMReader | None = None
    secrets = Secrets.from_env()
    if config.llm.enabled and not secrets.openai_api_key:
        print("note: [llm] is enabled but OPENAI_API_KEY is not set: offline only", file=sys.stderr)
    elif config.llm.enabled:
        from integrations.openai_llm import OpenAILLM

        client = OpenAILLM(
            api_key=secrets.openai_api_key or "",
            model=config.llm.model,
            base_url=secrets.openai_base_url,
            timeout=config.llm.timeout_seconds,
            max_retries=config.llm.max_retries,
            max_tokens_param=config.llm.max_tokens_param,
        )
        _check_llm(client, config.llm.model)
        llm = evaluate.LLMReader(config, client, classifier)
        readers["llm"] = llm
    result = evaluate.evaluate(items, readers, workers={"llm": config.llm.max_concurrency})
    if llm is not None and llm.calls and llm.fallbacks == llm.calls:
        # Every call failed: an "llm" column would be the offline reading under another
        # name. Show the offline figures only, and say why the model was not measured.
        failures = ", ".join(f"{kind} x{n}" for kind, n in llm.problems.most_common())
        print(
            f"error: the LLM ({config.llm.model}) answered none of {llm.calls} calls"
            f" ({failures}); offline figures only",
            file=sys.stderr,
        )
        result = evaluate.evaluate(items, {"offline": readers["offline"]})
        llm, bad = None, bad + 1  # exit 1: the evaluation asked for was not done
    if fmt == "json":
        payload = evaluate.as_json(result)
        payload.update(file=str(path), bad_lines=bad)
        if llm is not None:
            payload["llm"] = {
                "model": config.llm.model,
                "calls": llm.calls,
                "fallbacks": llm.fallbacks,
                "failures": dict(llm.problems),
            }
        print(json.dumps(payload, indent=2))
    else:
        print(f"{path}: {result.labelled} labelled mentions, {bad} bad lines")
        if llm is not None:
            failures = ", ".join(f"{kind} x{n}" for kind, n in llm.problems.most_common())
            print(
                f"llm: model {config.llm.model}, {llm.calls} calls, {llm.fallbacks} failed"
                f" (read as offline){': ' + failures if failures else ''}"
            )
        print("\n".join(evaluate.as_table(result)))
    return EXIT_FAILURE if bad else EXIT_OK


def _check_llm(client: Any, model: str) -> None:
    """Before one call per line: the endpoint answers and takes the key. A refused key is
    a ConfigError naming OPENAI_API_KEY (exit 2); an endpoint that cannot be reached is a
    runtime failure (exit 1), rather than thousands of calls failing one by one."""
    from bot.errors import DependencyUnreachable

    try:
        client.check()
    except DependencyUnreachable as exc:
        raise EvalAborted(
            f"{exc}; nothing evaluated (check OPENAI_BASE_URL, or set [llm] enabled = false"
            f" for the offline classifier only)"
        ) from None


class EvalAborted(SocialcareError):
    """`eval` could not do what was asked (exit 1), said in one line."""


def _digest(config: Config, department: str | None, *, debug: bool = False) -> int:
    """Build the digest of the last 24 hours and send it now (every call sends)."""
    from bot.config import Secrets, missing_environment
    from bot.delivery import ChatWorker
    from bot.followup import FollowUp
    from bot.outbox import DIGEST
    from bot.ports import ChatSurface

    if department and config.department(department) is None:
        known = ", ".join(d.id for d in config.departments)
        raise UsageError(f"unknown department {department!r}; departments: {known}")
    secrets = Secrets.from_env()
    # Sending needs the tokens that post (SLACK_BOT_TOKEN, Teams' app credential); not
    # X's, nor what only receives (the signing secret, Socket Mode's app token).
    missing = [
        m for m in missing_environment(config, secrets) if "SLACK_BOT_TOKEN" in m or "TEAMS_" in m
    ]
    if missing:
        raise ConfigError(missing)
    surfaces: list[ChatSurface] = []
    service = _open_service(config)
    if config.slack.enabled:
        from handlers.slack import SlackSurface
        from integrations.charts import digest_chart
        from integrations.slack_api import SlackApi, make_web_client

        assert secrets.slack_bot_token is not None
        api = SlackApi(make_web_client(secrets.slack_bot_token, secrets.slack_api_url))
        surfaces.append(SlackSurface(api, config, SystemClock(), chart=digest_chart))
    if config.teams.enabled:
        from handlers.teams import TeamsSurface
        from integrations.charts import digest_chart
        from integrations.teams_api import TeamsApi

        assert secrets.teams_app_id and secrets.teams_app_password and secrets.teams_tenant_id
        teams_api = TeamsApi(
            app_id=secrets.teams_app_id,
            password=secrets.teams_app_password,
            tenant_id=secrets.teams_tenant_id,
            login_url=secrets.teams_login_url,
        )
        surfaces.append(
            TeamsSurface(
                teams_api,
                service,
                service_url_override=secrets.teams_service_url,
                chart=digest_chart,
            )
        )
    if not surfaces:
        from rich.console import Console

        from handlers.console import ConsoleSurface

        surfaces.append(ConsoleSurface(Console(), SystemClock().now))
    before = service.store.scalar("SELECT coalesce(max(id), 0) FROM outbox")
    FollowUp(service).send_digests(service.clock.now(), department=department)
    with _quiet_delivery_log(debug):  # the outcome is said below, once, with its reason
        for surface in surfaces:
            # With several surfaces, each takes only the digests queued for it.
            worker = ChatWorker(service, surface, kinds=(DIGEST,), shared=len(surfaces) > 1)
            worker.drain()
    outcome = list(
        service.store.query(
            "SELECT state, channel, last_error FROM outbox WHERE kind = 'digest' AND id > ?"
            " ORDER BY id",
            (before,),
        )
    )
    service.store.close()
    sent = sum(1 for row in outcome if row["state"] == "done")
    verb = "sent" if config.slack.enabled or config.teams.enabled else "printed"
    print(f"{verb} {sent} digest(s)", file=sys.stderr)
    for row in outcome:
        where = f"digest for {row['channel']}"
        if row["state"] == "failed":
            print(f"error: {where} refused: {row['last_error']}", file=sys.stderr)
        elif row["state"] != "done":
            reason = row["last_error"] or "queued behind an earlier message to the same channel"
            print(
                f"error: {where} not sent now ({reason}); it stays queued and `socialcare run`"
                " sends it when the chat service answers",
                file=sys.stderr,
            )
    return EXIT_OK if sent == len(outcome) else EXIT_FAILURE


@contextlib.contextmanager
def _quiet_delivery_log(debug: bool) -> Iterator[None]:
    """The chat worker logs each retry for a long-running bot ("will retry in 2s"); a
    one-shot command exits instead, so its own summary is the truth to print."""
    logger = logging.getLogger("bot.delivery")
    previous = logger.level
    if not debug:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _parse_since(value: str | None, tz: Any) -> datetime:
    """ISO 8601; without a zone it is read in [bot].timezone. Default: 7 days ago."""
    if value is None:
        return datetime.now(UTC) - timedelta(days=7)
    if not value.strip():
        raise UsageError("--since is empty; give an ISO 8601 date or time, e.g. 2026-11-01")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {value!r} is not an ISO 8601 date or time, e.g. 2026-11-01"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


def _report(config: Config, since_arg: str | None, fmt: str, by: str = "department") -> int:
    from bot.jsonl import SOURCE_NETWORKS
    from bot.reports import format_duration, kpis
    from bot.sla import BusinessCalendar

    since = _parse_since(since_arg, config.tz)
    service = _open_service(config)
    until = datetime.now(UTC) + timedelta(seconds=1)
    calendar = BusinessCalendar.from_config(config)
    if by == "network":
        rows = [
            replace(
                kpis(service.store, since=since, until=until, network=n, calendar=calendar),
                department=n,
            )
            for n in SOURCE_NETWORKS
        ]
    elif by == "tag":
        from bot.reports import tags_in_period

        rows = [
            replace(
                kpis(service.store, since=since, until=until, tag=t, calendar=calendar),
                department=t,
            )
            for t in tags_in_period(service.store, since=since, until=until)
        ]
        if not rows:
            print(
                f"note: no tagged cases since {since:%Y-%m-%d %H:%M} UTC; [[tag_rules]] tag"
                " cases at ingest, staff with /care tag N +TAG",
                file=sys.stderr,
            )
    else:
        rows = [
            kpis(service.store, since=since, until=until, department=d.id, calendar=calendar)
            for d in config.departments
        ]
    service.store.close()
    records = [
        {
            by: k.department,
            "received": k.received,
            "needs_reply": k.needs_reply,
            "replied": k.replied,
            "dismissed": k.dismissed,
            "open": k.open,
            "response_rate": round(k.response_rate, 4) if k.response_rate is not None else None,
            "median_first_response_s": k.median_first_response_s,
            "p90_first_response_s": k.p90_first_response_s,
            "median_first_response_business_s": k.median_first_response_business_s,
            "sla_breaches": k.sla_breaches,
        }
        for k in rows
    ]
    if fmt == "json":
        key = {"department": "departments", "network": "networks", "tag": "tags"}[by]
        payload = {"since": since.isoformat(), "until": until.isoformat(), key: records}
        print(json.dumps(payload))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=list(records[0]) if records else [by], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in records)
        print(buffer.getvalue(), end="")
    else:
        from rich.table import Table

        table = Table(
            by,
            "received",
            "needs reply",
            "replied",
            "dismissed",
            "open",
            "response rate",
            "median FRT",
            "p90 FRT",
            "median FRT (business)",
            "SLA breaches",
            title=f"KPIs since {since:%Y-%m-%d %H:%M} UTC",
        )
        for k in rows:
            rate = f"{k.response_rate:.0%}" if k.response_rate is not None else "n/a"
            table.add_row(
                k.department,
                str(k.received),
                str(k.needs_reply),
                str(k.replied),
                str(k.dismissed),
                str(k.open),
                rate,
                format_duration(k.median_first_response_s),
                format_duration(k.p90_first_response_s),
                format_duration(k.median_first_response_business_s),
                str(k.sla_breaches),
            )
        _table_console().print(table)
    return EXIT_OK


def _table_console() -> Any:
    """Rich console for tables: piped output gets room instead of cut-off columns."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=220)


def _audit(args: argparse.Namespace) -> int:
    if args.audit_command is None:
        print(AUDIT_USAGE, file=sys.stderr)
        return EXIT_USAGE
    expect = None
    if getattr(args, "expect_head", None) is not None:
        try:
            expect = audit.Head.parse(args.expect_head)
        except ValueError as exc:
            raise UsageError(f"--expect-head {exc}") from None
    result = _audit_result(load_config(args.config), expect)
    if not result.ok:
        print(
            f"audit log TAMPERED at entry {result.first_bad_seq}: {result.problem}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    if args.audit_command == "head":
        print(result.head)  # just N:HASH, for scripts to keep
    elif expect:
        print(f"audit log intact: {result.entries} entries, head {result.head}; extends {expect}")
    else:
        print(f"audit log intact: {result.entries} entries, head {result.head}")
    return EXIT_OK


def _audit_result(config: Config, expect: audit.Head | None) -> audit.VerifyResult:
    """Verify the chain (and that it extends `expect`, a witnessed head, if given)."""
    target = config.database_target()
    if isinstance(target, Path) and not target.exists():
        raise UsageError(f"{target}: database not found")
    store = open_store(target)
    try:
        return audit.verify(store.db, expect=expect)
    finally:
        store.close()


def _store(args: argparse.Namespace) -> int:
    if args.store_command is None:
        print(STORE_USAGE, file=sys.stderr)
        return EXIT_USAGE
    from bot.store_copy import (
        CopyFailed,
        CopyRefused,
        copy_sqlite_to_postgres,
        mask_url,
    )
    from bot.store_pg import is_postgres_url

    if not is_postgres_url(args.to):
        raise UsageError(
            f"--to {mask_url(args.to)}: not a PostgreSQL URL (postgresql://user@host/db)"
        )
    config = load_config(args.config)
    if is_postgres_url(config.bot.database):
        raise UsageError(
            "[bot].database is already a PostgreSQL URL; `store copy` copies a SQLite file"
        )
    try:
        result = copy_sqlite_to_postgres(config.database_path, args.to)
    except CopyRefused as exc:
        raise UsageError(str(exc)) from None
    except CopyFailed as exc:
        if args.debug:
            raise
        print(f"error: store copy failed, nothing committed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"copied {result.source} into {result.target}")
    width = max((len(t.name) for t in result.tables), default=0)
    for table in result.tables:
        unit = "row" if table.rows == 1 else "rows"
        print(f"  {table.name:<{width}}  {table.rows:>9,} {unit}")
    print(f"copied {result.rows} rows; audit chain intact, head {result.head}")
    return EXIT_OK
