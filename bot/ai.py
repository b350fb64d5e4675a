"""LLM reading and reply suggestions, off the critical path and safe by construction.

The card is posted at once with the offline reading; an `ai` outbox item per case then
asks the LLM, in ONE structured call, for a reading and (when a reply is needed) up to
three suggestions, and updates the card. Mentions the offline reading marks as spam or
clearly needing no reply are not sent at all unless `[llm].read_everything`. Safety:
- the post is sent as delimited data, after personal data is redacted (bot.redact);
- suggestions are generated for a neutral "@customer" and pass the same checks as a
  human draft, plus no links, no placeholders and no echo of the system prompt; a bad
  one is dropped, the good ones stay;
- suggestions only ever become drafts through a person's click: nothing here can
  approve or publish.
Cost: one call per mention, its answer capped at `[llm].max_output_tokens`; the static
part of the prompt (rules, brand voice, schema) is the whole system message, identical
for every mention, so providers' prompt caches apply; identical (redacted) texts share
one cached result; a per-hour call budget is reserved atomically in the database, so a
burst cannot overspend; cases that waited too long get no suggestions rather than
delaying the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

import prompts
from bot import audit
from bot.config import Config
from bot.health import Health
from bot.models import Intent, Priority, Sentiment, shows_handle
from bot.redact import redact
from bot.service import CareService
from bot.sla import first_response_due
from bot.textcheck import check_reply, has_link, starts_with_handle
from bot.views import CaseView

log = logging.getLogger(__name__)

AI = "ai"
NEUTRAL_HANDLE = "customer"
# The neutral address with the comma or colon after it, for networks that show no handle.
_NEUTRAL_ADDRESS = re.compile(rf",?\s*@{NEUTRAL_HANDLE}\b[,:]?", re.I)
# The per-mention cap covers what is sent as well as the answer: a Mastodon instance may
# allow posts of 100,000 characters, a conversation gathers follow-ups. The start and the
# end of a longer text are kept (~2,000 tokens in all).
MAX_PROMPT_TEXT_CHARS = 8000
STALE_AFTER = timedelta(minutes=10)
M = TypeVar("M", bound=BaseModel)


class LLMReading(BaseModel):
    """What the model must return for a reading; anything else is rejected whole."""

    model_config = ConfigDict(extra="forbid")

    intent: Intent
    sentiment: Sentiment
    priority: Priority
    needs_reply: bool
    language: str = Field(pattern=r"^[a-z]{2,3}$")
    # Asked for every time (a strict schema lists every field); a server that leaves it out
    # still gives a usable reading.
    summary: str = Field(default="", max_length=300)


# The one answer per mention: the reading and, when a reply is needed, suggestions.
# (A comment, not a docstring: a docstring would be sent with the schema on every call.)
class LLMAnswer(LLMReading):
    suggestions: list[str] = Field(default_factory=list, max_length=10)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # The schema travels with every request and is billed as prompt: titles repeat
        # the field names and tell the model nothing, so they are left out.
        schema: dict[str, Any] = _without_titles(super().model_json_schema(*args, **kwargs))
        return schema


def _without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_titles(value)
            for key, value in node.items()
            # "title" as a key of "properties" would be a field name: keep those.
            if key not in ("title", "description") or isinstance(value, dict)
        }
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    return node


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLMError(Exception):
    """The model call failed or its answer did not fit the schema."""


class LLMClient(Protocol):
    """One structured call; raise LLMError for any failure (timeout, HTTP, bad JSON)."""

    model: str

    def structured(
        self, *, system: str, user: str, schema: type[M], max_tokens: int | None = None
    ) -> tuple[M, Usage]: ...


_PLACEHOLDER = re.compile(r"\[(?:email|phone|card number|reference)\]", re.I)


def leaks_prompt(text: str, system_prompt: str, *, shingle: int = 6) -> bool:
    """True if the text repeats any run of `shingle` words of the system prompt."""

    def grams(value: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", value.lower())
        return {tuple(words[i : i + shingle]) for i in range(len(words) - shingle + 1)}

    return bool(grams(text) & grams(system_prompt))


def safe_suggestions(
    raw: list[str],
    *,
    handle: str,
    forbidden: list[str],
    system_prompt: str,
    limit: int,
    network: str = "x",
    max_length: int | None = None,
) -> list[str]:
    """Each suggestion on its own: personalised, then kept only if it passes every check."""
    kept: list[str] = []
    for text in raw:
        text = " ".join(str(text).split())
        if shows_handle(network):
            text = re.sub(rf"@{NEUTRAL_HANDLE}\b", f"@{handle}", text, flags=re.I)
        else:
            # Facebook's "handle" is a page-scoped id: "@7391847239012345" in a public
            # reply. The reply sits under the comment and notifies its author anyway.
            text = " ".join(_NEUTRAL_ADDRESS.sub("", text).split())
            text = text[:1].upper() + text[1:]
        if starts_with_handle(network) and f"@{handle}".lower() not in text.lower():
            text = f"@{handle} {text}"
        problems = check_reply(
            text, author_handle=handle, forbidden=forbidden, network=network, limit=max_length
        )
        if problems or has_link(text) or _PLACEHOLDER.search(text):
            log.info("dropped a suggestion: %s", "; ".join(problems) or "link or placeholder")
            continue
        if leaks_prompt(text, system_prompt):
            log.warning("dropped a suggestion that repeats the system prompt")
            continue
        if text not in kept:
            kept.append(text)
    return kept[:limit]


def _data(text: str) -> str:
    # The post cannot close (or fake) its delimiter, in any spelling: no "<" gets through.
    return text.replace("<", "‹").replace(">", "›")


def skips_llm(intent: Intent, needs_reply: bool, sentiment: Sentiment, priority: Priority) -> bool:
    """True when the offline reading is sure enough that the LLM would add nothing: spam,
    or no reply needed, with nothing negative or pressing about it (praise, chatter).
    A negative "spam" is sent: the rules call a complaint that tags six accounts or
    links three photos spam, and only the model can say it is not."""
    calm = sentiment is not Sentiment.NEGATIVE and priority in (Priority.NORMAL, Priority.LOW)
    return calm and (intent is Intent.SPAM or not needs_reply)


def prompt_text(text: str) -> str:
    """A post (or conversation) as the LLM may see it: redacted, then cut to the cap."""
    text = redact(text)
    if len(text) <= MAX_PROMPT_TEXT_CHARS:
        return text
    half = MAX_PROMPT_TEXT_CHARS // 2
    return f"{text[:half]}\n[… {len(text) - 2 * half} characters left out …]\n{text[-half:]}"


def capped_call(
    client: LLMClient, config: Config, system: str, user: str, schema: type[M]
) -> tuple[M, Usage]:
    """Every LLM call goes through here: with the per-mention cap on its answer."""
    return client.structured(
        system=system, user=user, schema=schema, max_tokens=config.llm.max_output_tokens
    )


class ReplyPrompt:
    """The one prompt per mention. The system message is the static part -- rules, brand
    voice, schema -- rendered from the config alone, so it is byte-identical for every
    mention and a provider's prompt cache can serve it; the mention comes after it."""

    def __init__(self, config: Config) -> None:
        self.prompt = prompts.load("reply")
        self.version = self.prompt.version
        brand = config.brand
        self.count = config.llm.suggestions
        self._static = {
            "brand": config.bot.brand,
            "voice": brand.voice,
            "dos": "; ".join(brand.dos) or "be helpful",
            "donts": "; ".join(brand.donts) or "nothing extra",
            "sign_off": brand.sign_off or "(none)",
            "handle": NEUTRAL_HANDLE,
            "count": str(self.count),
        }

    @property
    def system(self) -> str:
        return self.render(department="", history="", text="")[0]

    def render(self, *, department: str, history: str, text: str) -> tuple[str, str]:
        """(system, user); `text` and `history` must already be redacted."""
        return self.prompt.render(
            **self._static,
            department=department,
            history=history or "(none)",
            text=_data(text),
        )


class AIEnricher:
    """Drains `ai` outbox items: one LLM reading and suggestions per case."""

    def __init__(
        self, service: CareService, client: LLMClient, *, health: Health | None = None
    ) -> None:
        self.service = service
        self.client = client
        self.health = health
        self.config: Config = service.config
        self.store = service.store
        self.clock = service.clock

    # -- budget and cache

    def _reserve_call(self, case_id: int, kind: str, prompt_version: str) -> int | None:
        """Take one call from this hour's budget, atomically; None when it is spent."""
        now = self.clock.now()
        with self.store.write() as db:
            used = db.execute(
                "SELECT count(*) FROM llm_calls WHERE cached = 0 AND at >= ?",
                ((now - timedelta(hours=1)).isoformat(),),
            ).fetchone()[0]
            if used >= self.config.llm.max_calls_per_hour:
                return None
            row = db.execute(
                "INSERT INTO llm_calls (at, case_id, kind, model, prompt_version, cached)"
                " VALUES (?, ?, ?, ?, ?, 0) RETURNING id",
                (now.isoformat(), case_id, kind, self.client.model, prompt_version),
            ).fetchone()
            return int(row[0])

    def _record_usage(self, call_id: int, usage: Usage) -> None:
        with self.store.write() as db:
            db.execute(
                "UPDATE llm_calls SET prompt_tokens = ?, completion_tokens = ? WHERE id = ?",
                (usage.prompt_tokens, usage.completion_tokens, call_id),
            )

    def _cached(self, key: str, case_id: int, kind: str, version: str) -> dict[str, Any] | None:
        row = self.store.one("SELECT result FROM llm_cache WHERE key = ?", [key])
        if row is None:
            return None
        with self.store.write() as db:
            db.execute(
                "INSERT INTO llm_calls (at, case_id, kind, model, prompt_version, cached)"
                " VALUES (?, ?, ?, ?, ?, 1)",
                (self.clock.now().isoformat(), case_id, kind, self.client.model, version),
            )
        result: dict[str, Any] = json.loads(row["result"])
        return result

    def _ask(
        self, case_id: int, kind: str, version: str, system: str, user: str, schema: type[M]
    ) -> M | None:
        """One budgeted, cached, capped call; None when it fails or the budget is spent."""
        key = hashlib.sha256(
            json.dumps([self.client.model, version, system, user]).encode()
        ).hexdigest()
        cached = self._cached(key, case_id, kind, version)
        if cached is not None:
            return schema.model_validate(cached)
        call_id = self._reserve_call(case_id, kind, version)
        if call_id is None:
            log.info("LLM budget for this hour is spent: case #%s gets no %s", case_id, kind)
            return None
        try:
            answer, usage = capped_call(self.client, self.config, system, user, schema)
        except LLMError as exc:
            if self.health is not None:
                self.health.failed("llm", str(exc))  # logs the start of an outage once
            log.log(
                logging.DEBUG if self.health else logging.WARNING,
                "LLM %s for case #%s failed: %s",
                kind,
                case_id,
                exc,
            )
            return None
        if self.health is not None:
            self.health.ok("llm")
        self._record_usage(call_id, usage)
        with self.store.write() as db:
            db.execute(
                "INSERT INTO llm_cache (key, kind, result, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,"
                " result = excluded.result, created_at = excluded.created_at",
                (key, kind, answer.model_dump_json(), self.clock.now().isoformat()),
            )
        return answer

    # -- the work

    def run_once(self) -> bool:
        item = self.service.outbox.claim([AI])
        if item is None:
            return False
        assert item.case_id is not None
        created = datetime.fromisoformat(item.created_at)
        if self.clock.now() - created > STALE_AFTER:
            # During a spike, late suggestions help nobody: skip rather than queue up.
            self.service.outbox.done(item.id, {"skipped": "stale"})
            return True
        try:
            outcome = self.enrich(item.case_id)
        except Exception as exc:
            # Suggestions are optional: a surprise is logged and the case goes on without.
            log.exception("LLM work for case #%s failed unexpectedly", item.case_id)
            outcome = {"skipped": f"error: {exc.__class__.__name__}"}
        self.service.outbox.done(item.id, outcome)
        return True

    def enrich(self, case_id: int) -> dict[str, Any]:
        view = self.service.view(case_id)
        case = view.case
        if not case.is_open:
            return {"skipped": case.state.value}
        if not self.config.llm.read_everything and skips_llm(
            case.intent, case.needs_reply, case.sentiment, case.priority
        ):
            return {"skipped": f"offline reading: {case.intent.value}, no reply needed"}
        prompt = ReplyPrompt(self.config)
        system, user = prompt.render(
            department=view.department_name,
            history=self._history(view),
            text=self._conversation(view),
        )
        answer = self._ask(case.id, "combined", prompt.version, system, user, LLMAnswer)
        if answer is None:
            return {"reading": False}
        self._store_reading(case.id, answer, prompt.version, case.priority)
        outcome: dict[str, Any] = {"reading": True}
        if prompt.count and (answer.needs_reply or case.needs_reply):
            kept = self._safe(view, answer.suggestions, system, prompt.count)
            self._store_suggestions(case.id, kept, prompt.version)
            outcome["suggestions"] = len(kept)
            outcome["dropped"] = len(answer.suggestions) - len(kept)
        return outcome

    # -- the parts of a prompt and an answer, shared with bench/bench_llm.py's old path

    @staticmethod
    def _conversation(view: CaseView) -> str:
        return prompt_text("\n---\n".join([view.text, *(p.text for p in view.thread)]))

    @staticmethod
    def _history(view: CaseView) -> str:
        return "\n".join(
            f"- {e.created_at:%Y-%m-%d} {e.intent} ({e.state}): {_data(redact(e.text))[:200]}"
            for e in view.earlier
        )

    def _safe(self, view: CaseView, raw: list[str], system: str, count: int) -> list[str]:
        return safe_suggestions(
            raw,
            handle=view.author.handle,
            forbidden=list(self.config.brand.forbidden_phrases),
            system_prompt=system,
            limit=count,
            network=view.case.network,
            max_length=self.service.reply_limits.get(view.case.network),
        )

    def _store_reading(
        self, case_id: int, reading: LLMReading, version: str, offline: Priority
    ) -> None:
        # Never less urgent than the offline reading, which knows the author's reach.
        order = [Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW]
        priority = min(reading.priority, offline, key=order.index)
        now = self.clock.now()
        due = self._due(case_id, reading.needs_reply, priority)
        with self.store.write() as db:
            db.execute(
                "UPDATE cases SET intent = ?, sentiment = ?, priority = ?,"
                # (a portable max(): PostgreSQL has no two-argument max)
                " needs_reply = CASE WHEN ? > needs_reply THEN 1 ELSE needs_reply END,"
                " language = ?, summary = ?, classifier = ?,"
                " sla_due_at = coalesce(?, sla_due_at), updated_at = ? WHERE id = ?",
                (
                    reading.intent.value,
                    reading.sentiment.value,
                    priority.value,
                    int(reading.needs_reply),
                    reading.language,
                    reading.summary,
                    f"llm:{self.client.model}:{version}",
                    due.isoformat() if due else None,
                    now.isoformat(),
                    case_id,
                ),
            )
            audit.append(
                db,
                at=now,
                actor="system:llm",
                action="case.reread",
                case_id=case_id,
                detail={
                    "intent": reading.intent.value,
                    "priority": priority.value,
                    "prompt_version": version,
                },
            )
            self.service.queue_card_update(db, case_id, now)

    def _due(self, case_id: int, needs_reply: bool, priority: Priority) -> datetime | None:
        """A new due time when the LLM finds a reply is needed, or that it is urgent."""
        row = self.store.one(
            "SELECT department, mention_at, sla_due_at, needs_reply, priority FROM cases"
            " WHERE id = ?",
            [case_id],
        )
        if row is None or not (needs_reply or row["needs_reply"]):
            return None
        became_urgent = priority is Priority.URGENT and row["priority"] != Priority.URGENT.value
        if row["sla_due_at"] and not became_urgent:
            return None
        dept = self.config.department(row["department"]) or self.config.default_department
        return first_response_due(
            self.service.calendar,
            datetime.fromisoformat(row["mention_at"]),
            dept.first_response_minutes,
            urgent=priority is Priority.URGENT,
            urgent_calendar_time=self.config.sla.urgent_calendar_time,
        )

    def _store_suggestions(self, case_id: int, texts: list[str], version: str) -> None:
        now = self.clock.now()
        with self.store.write() as db:
            db.execute("DELETE FROM suggestions WHERE case_id = ?", (case_id,))
            for position, text in enumerate(texts, start=1):
                db.execute(
                    "INSERT INTO suggestions (case_id, position, text, source, prompt_version,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (case_id, position, text, f"llm:{self.client.model}", version, now.isoformat()),
                )
            self.service.queue_card_update(db, case_id, now)
