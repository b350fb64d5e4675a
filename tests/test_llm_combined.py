"""One LLM call per mention (issue 14): the reading and the suggestions in one structured
answer, spam and no-reply posts not sent, a static prompt prefix, a token cap -- all seen
from the fake OpenAI server, through the real openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.ai import AIEnricher
from bot.delivery import ChatWorker
from bot.models import Intent
from tests.conftest import mention
from tests.fakes.openai import FakeOpenAI, start_fake_openai
from tests.test_ai import good_answer, make, suggestions
from tests.test_outbox import RecordingSurface

SPAM = "Follow me for a free crypto giveaway, click here"
PRAISE = "@AcmeAir thanks, great flight today!"
COMPLAINT = "@AcmeAir my flight was delayed 3 hours, I want a refund"
QUESTION = "@AcmeAir can I bring my guitar on board?"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with start_fake_openai() as server:
        server.set_responder(lambda body: json.dumps(good_answer()))
        yield server


def drain(ai: AIEnricher) -> list[dict[str, Any]]:
    while ai.run_once():
        pass
    rows = ai.store.query("SELECT case_id, result FROM outbox WHERE kind = 'ai' ORDER BY case_id")
    return [json.loads(row["result"]) for row in rows]


def schema_of(body: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = body["response_format"]["json_schema"]
    return schema


def test_one_request_per_needs_reply_mention_carries_the_combined_schema(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    service, ai, _ = make(tmp_path, fake)
    ids = service.ingest_many(
        [mention(COMPLAINT, author_id="1"), mention(QUESTION, author_id="2")]
    ).case_ids
    drain(ai)
    assert len(fake.requests) == 2
    for body in fake.requests:
        schema = schema_of(body)
        assert schema["name"] == "LLMAnswer" and schema["strict"] is True
        fields = schema["schema"]["properties"]
        assert {"intent", "sentiment", "priority", "needs_reply", "language"} <= set(fields)
        assert fields["suggestions"]["type"] == "array"
    for case_id in ids:
        assert suggestions(service, case_id)  # both parts of the one answer were used
        assert service.get_case(case_id).extra["classifier"] == "llm:test-model:combined-v1"
    kinds = service.store.query("SELECT kind, count(*) AS n FROM llm_calls GROUP BY kind")
    assert [(r["kind"], r["n"]) for r in kinds] == [("combined", 2)]


@pytest.mark.parametrize("text", [SPAM, PRAISE], ids=["spam", "praise"])
def test_spam_and_no_reply_posts_skip_the_llm(tmp_path: Path, fake: FakeOpenAI, text: str) -> None:
    service, ai, _ = make(tmp_path, fake)
    case_id = service.ingest(mention(text)).case_ids[0]
    [outcome] = drain(ai)
    assert fake.requests == []
    assert outcome["skipped"].startswith("offline reading:")
    assert service.get_case(case_id).extra["classifier"] == "offline"
    assert service.store.scalar("SELECT count(*) FROM outbox WHERE kind = 'card'") == 1


def test_read_everything_sends_spam_too(tmp_path: Path, fake: FakeOpenAI) -> None:
    service, ai, _ = make(tmp_path, fake, read_everything=True)
    fake.set_responder(
        lambda body: json.dumps(
            good_answer(intent="spam", needs_reply=False, sentiment="neutral") | {"suggestions": []}
        )
    )
    case_id = service.ingest(mention(SPAM)).case_ids[0]
    [outcome] = drain(ai)
    assert len(fake.requests) == 1
    assert outcome == {"reading": True}
    assert service.get_case(case_id).intent is Intent.SPAM
    assert suggestions(service, case_id) == []


def test_the_static_prompt_prefix_is_identical_across_mentions(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    service, ai, _ = make(tmp_path, fake)
    service.ingest_many(
        [
            mention(COMPLAINT, author_id="1", author_handle="ana"),
            # another author, text, history and department
            mention("@AcmeAir I am a journalist, can we talk?", author_id="2"),
        ]
    )
    service.ingest(mention("@AcmeAir still no refund?", author_id="1", author_handle="ana"))
    drain(ai)
    first, second, third = fake.requests
    assert first["messages"][0] == second["messages"][0] == third["messages"][0]
    assert first["messages"][0]["role"] == "system"
    assert first["response_format"] == second["response_format"] == third["response_format"]
    # Everything about the mention comes after the static part.
    assert "Team:" not in first["messages"][0]["content"]
    assert first["messages"][1]["content"].startswith("Team: Customer Care")
    assert "journalist" in second["messages"][1]["content"]
    assert "Earlier contacts" in third["messages"][1]["content"]
    # ... so a provider's prompt cache serves the prefix (the fake reports it like OpenAI).
    system_tokens = len(first["messages"][0]["content"]) // 4
    used = service.store.query("SELECT prompt_tokens FROM llm_calls ORDER BY id")
    assert all(row["prompt_tokens"] > system_tokens for row in used)


def test_the_fake_reports_cached_prompt_tokens_for_a_repeated_prefix(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=fake.base_url, api_key="test-key-not-real", max_retries=0)
    system = {"role": "system", "content": "s" * 400}
    usages = [
        client.chat.completions.create(
            model="m", messages=[system, {"role": "user", "content": text}]
        ).usage
        for text in ("first post", "second post")
    ]
    details = [u.prompt_tokens_details for u in usages if u]
    cached = [d.cached_tokens for d in details if d]
    assert cached == [0, 100]


@pytest.mark.parametrize("param", ["max_completion_tokens", "max_tokens"])
def test_the_token_cap_is_sent_with_each_request(
    tmp_path: Path, fake: FakeOpenAI, param: str
) -> None:
    service, ai, _ = make(tmp_path, fake, max_output_tokens=321, max_tokens_param=param)
    ai.client.max_tokens_param = param  # type: ignore[attr-defined]  # as runtime wires it
    service.ingest(mention(COMPLAINT))
    drain(ai)
    [body] = fake.requests
    assert body[param] == 321
    other = {"max_completion_tokens", "max_tokens"} - {param}
    assert not other & set(body)


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps(good_answer(intent="world domination")),
        '{"intent": "complaint", "sentiment": ',
    ],
    ids=["unknown-intent", "broken-json"],
)
def test_a_bad_answer_keeps_the_offline_reading_and_the_card_is_posted(
    tmp_path: Path, fake: FakeOpenAI, answer: str
) -> None:
    service, ai, _ = make(tmp_path, fake)
    fake.set_responder(lambda body: answer)
    surface = RecordingSurface()
    case_id = service.ingest(mention(COMPLAINT)).case_ids[0]
    before = service.get_case(case_id)
    [outcome] = drain(ai)
    ChatWorker(service, surface).drain()
    after = service.get_case(case_id)
    assert outcome == {"reading": False}
    assert (after.intent, after.sentiment, after.priority) == (
        before.intent,
        before.sentiment,
        before.priority,
    )
    assert after.extra["classifier"] == "offline"
    assert suggestions(service, case_id) == []
    assert surface.calls == [("post", "C0CARE", f"#{case_id} new")]


def test_an_answer_cut_by_the_token_cap_is_rejected_whole(tmp_path: Path, fake: FakeOpenAI) -> None:
    service, ai, _ = make(tmp_path, fake, max_output_tokens=64)
    fake.reply_text(json.dumps(good_answer())[:60], finish_reason="length")
    case_id = service.ingest(mention(COMPLAINT)).case_ids[0]
    assert drain(ai) == [{"reading": False}]
    assert service.get_case(case_id).extra["classifier"] == "offline"
