"""The two-call LLM path the product had before issue 14, kept only for bench_llm.py.

One call for the reading (bench/legacy_prompts/classify.txt, schema `OldReading`), then,
when a reply is needed, a second for the suggestions (legacy_prompts/draft.txt, schema
`LLMSuggestions`), every mention sent. Everything else -- budget, cache, redaction,
suggestion checks, storage -- is the product's own AIEnricher, so the bench compares the
two ways of asking and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import prompts
from bot.ai import NEUTRAL_HANDLE, AIEnricher, LLMReading, _data

HERE = Path(__file__).resolve().parent / "legacy_prompts"


class OldReading(LLMReading):
    """The reading schema of the two-call path, which also asked for a routing reason."""

    routing_reason: str = Field(max_length=300)


class LLMSuggestions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suggestions: list[str] = Field(max_length=10)


def legacy_prompt(name: str) -> prompts.Prompt:
    return prompts.parse(name, (HERE / f"{name}.txt").read_text(encoding="utf-8"))


class TwoCallEnricher(AIEnricher):
    """AIEnricher asking the old way: a reading call, then a suggestions call."""

    def enrich(self, case_id: int) -> dict[str, Any]:
        view = self.service.view(case_id)
        case = view.case
        if not case.is_open:
            return {"skipped": case.state.value}
        brand = self.config.bot.brand
        text = _data(self._conversation(view))
        reading_prompt = legacy_prompt("classify")
        system, user = reading_prompt.render(brand=brand, handle=NEUTRAL_HANDLE, text=text)
        reading = self._ask(case.id, "reading", reading_prompt.version, system, user, OldReading)
        outcome: dict[str, Any] = {"reading": reading is not None}
        needs_reply = case.needs_reply
        if reading is not None:
            needs_reply = reading.needs_reply or case.needs_reply
            self._store_reading(case.id, reading, reading_prompt.version, case.priority)
        count = self.config.llm.suggestions
        if not (needs_reply and count):
            return outcome
        draft_prompt = legacy_prompt("draft")
        brand_cfg = self.config.brand
        system, user = draft_prompt.render(
            brand=brand,
            voice=brand_cfg.voice,
            dos="; ".join(brand_cfg.dos) or "be helpful",
            donts="; ".join(brand_cfg.donts) or "nothing extra",
            sign_off=brand_cfg.sign_off or "(none)",
            handle=NEUTRAL_HANDLE,
            count=str(count),
            department=view.department_name,
            history=self._history(view) or "(none)",
            text=text,
        )
        answer = self._ask(
            case.id, "suggestions", draft_prompt.version, system, user, LLMSuggestions
        )
        if answer is not None:
            kept = self._safe(view, answer.suggestions, system, count)
            self._store_suggestions(case.id, kept, draft_prompt.version)
            outcome["suggestions"] = len(kept)
        return outcome
