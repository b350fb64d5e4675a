"""End to end: customers' booking codes, emails and phone numbers never reach the LLM.

Each phrasing from tests/test_redact.py goes in as a mention, through the real AI path
(AIEnricher, the one combined prompt, the openai SDK) to the fake OpenAI server, and every
byte the fake received is searched for the data: the post itself, a thread reply and the
author's history. `read_everything` is on, so no phrasing escapes the check by being
skipped as a post needing no reply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.ai import AIEnricher
from bot.config import parse_config
from bot.ports import FixedClock
from bot.service import CareService
from bot.store import Store
from integrations.openai_llm import OpenAILLM
from tests.conftest import START, config_data, mention
from tests.fakes.openai import (
    FakeOpenAI,
    fake_openai,  # noqa: F401  (pytest fixture)
)
from tests.test_redact import PHRASINGS, Phrasing

ANSWER = {
    "intent": "complaint",
    "sentiment": "negative",
    "priority": "normal",
    "needs_reply": True,
    "language": "en",
    "summary": "Customer needs help with a booking.",
    "suggestions": ["@customer Sorry about that! DM us and we'll take a look."],
}


def make(tmp_path: Path, fake: FakeOpenAI) -> tuple[CareService, AIEnricher]:
    data = config_data()
    data["llm"] = {
        "enabled": True,
        "model": "test-model",
        "timeout_seconds": 2,
        "read_everything": True,
    }
    config = parse_config(data, base_dir=tmp_path)
    service = CareService(
        config, Store(config.database_path), clock=FixedClock(START), ai_enabled=True
    )
    client = OpenAILLM(
        api_key="test-key-not-real",
        model="test-model",
        base_url=fake.base_url,
        timeout=2,
        max_retries=0,
    )
    fake.set_responder(lambda body: json.dumps(ANSWER))
    return service, AIEnricher(service, client)


def sent_to_llm(fake: FakeOpenAI) -> str:
    """Everything the fake received: decoded bodies and the raw bytes (escapes included)."""
    raw = "\n".join(call.raw.decode("utf-8", errors="replace") for call in fake.calls)
    return fake.all_request_json() + "\n" + raw


def assert_nothing_leaked(fake: FakeOpenAI, phrasings: list[Phrasing]) -> str:
    sent = sent_to_llm(fake)
    assert fake.requests, "the LLM was never asked"
    leaked = [s for p in phrasings for s in p.secrets if s in sent]
    assert not leaked, f"sent to the LLM: {leaked}"
    return sent


@pytest.mark.parametrize("case", PHRASINGS, ids=[p.text for p in PHRASINGS])
def test_no_phrasing_leaks_its_data_to_the_llm(
    tmp_path: Path,
    fake_openai: FakeOpenAI,  # noqa: F811
    case: Phrasing,
) -> None:
    service, ai = make(tmp_path, fake_openai)
    service.ingest(mention(f"@AcmeAir help please, {case.text}"))
    assert ai.run_once()
    assert len(fake_openai.requests) == 1  # the reading and suggestions in one, redacted
    sent = assert_nothing_leaked(fake_openai, [case])
    assert case.label in sent
    assert case.kept in fake_openai.all_request_text()


def test_thread_replies_and_earlier_cases_are_redacted_too(
    tmp_path: Path,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    service, ai = make(tmp_path, fake_openai)
    # Earlier cases of the same author end up in the prompt as history.
    for number, case in enumerate(PHRASINGS[:5]):
        service.ingest(mention(f"@AcmeAir earlier: {case.text}", id=f"9{number}"))
        while ai.run_once():
            pass
    # The rest arrive as one conversation: a post and its replies, all in one prompt.
    rest = PHRASINGS[5:]
    root = mention(f"@AcmeAir {rest[0].text}", id="700", conversation_id="700")
    replies = [
        mention(f"@AcmeAir also {p.text}", id=str(701 + i), conversation_id="700")
        for i, p in enumerate(rest[1:])
    ]
    stats = service.ingest_many([root, *replies])
    assert stats.joined == len(replies)
    while ai.run_once():
        pass
    assert_nothing_leaked(fake_openai, PHRASINGS)
    last: dict[str, Any] = fake_openai.last_request
    assert "earlier:" in json.dumps(last)  # the history really was in the prompt
