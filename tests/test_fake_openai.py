"""The fake OpenAI server, exercised through the real openai SDK (httpx2 underneath)."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.openai import (
    FakeOpenAI,
    FakeOpenAITimeout,
    Reply,
    chat_completion,
    fake_openai,  # noqa: F401  (pytest fixture)
    start_fake_openai,
)

API_KEY = "test-key-not-real"
MODEL = "gpt-4o-mini"


class Intent(enum.StrEnum):
    complaint = "complaint"
    question = "question"
    praise = "praise"


class Triage(pydantic.BaseModel):
    intent: Intent
    urgent: bool
    summary: str


def make_client(fake: FakeOpenAI, **options: Any) -> OpenAI:
    kwargs: dict[str, Any] = {"max_retries": 0, "timeout": 2.0, **options}
    return OpenAI(base_url=fake.base_url, api_key=API_KEY, **kwargs)


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> Iterator[OpenAI]:  # noqa: F811
    with make_client(fake_openai) as c:
        yield c


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------- plain completions


def test_create_returns_queued_text_and_deterministic_usage(
    fake_openai: FakeOpenAI,  # noqa: F811
    client: OpenAI,
) -> None:
    fake_openai.reply_text("Sorry to hear that!")
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "You are a care agent."},  # 21 chars
        {"role": "user", "content": "my bag is lost"},  # 14 chars
    ]
    done = client.chat.completions.create(model=MODEL, messages=messages)

    assert done.object == "chat.completion"
    assert done.id.startswith("chatcmpl-")
    assert done.model == MODEL
    [choice] = done.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "Sorry to hear that!"
    assert choice.finish_reason == "stop"
    assert done.usage is not None
    assert done.usage.prompt_tokens == (21 + 14) // 4
    assert done.usage.completion_tokens == len("Sorry to hear that!") // 4 + 1
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert done._request_id == f"req_{done.id}"

    [body] = fake_openai.requests
    assert body["model"] == MODEL
    assert body["messages"] == messages


def test_queue_is_fifo_then_default_responder(
    fake_openai: FakeOpenAI,  # noqa: F811
    client: OpenAI,
) -> None:
    fake_openai.reply_text("first")
    fake_openai.reply_json({"n": 2})
    texts = [
        client.chat.completions.create(model=MODEL, messages=user(str(i)))
        .choices[0]
        .message.content
        for i in range(3)
    ]
    assert texts == ["first", '{"n": 2}', "OK"]
    assert fake_openai.pending() == 0


def test_responder_str_dict_and_http_spec(
    fake_openai: FakeOpenAI,  # noqa: F811
    client: OpenAI,
) -> None:
    def responder(body: dict[str, Any]) -> str | dict[str, Any]:
        text = body["messages"][-1]["content"]
        if text == "raw":
            return chat_completion(body, "hand made", completion_id="chatcmpl-raw")
        if text == "boom":
            return {"status": 503, "headers": {"x-should-retry": "false"}}
        return f"echo: {text}"

    fake_openai.set_responder(responder)
    echo = client.chat.completions.create(model=MODEL, messages=user("hi"))
    assert echo.choices[0].message.content == "echo: hi"
    raw = client.chat.completions.create(model=MODEL, messages=user("raw"))
    assert (raw.id, raw.choices[0].message.content) == ("chatcmpl-raw", "hand made")
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=user("boom"))
    assert info.value.status_code == 503

    fake_openai.set_responder(None)
    back = client.chat.completions.create(model=MODEL, messages=user("x"))
    assert back.choices[0].message.content == "OK"


def test_streaming_create(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.reply_text("streamed reply")
    stream = client.chat.completions.create(
        model=MODEL,
        messages=user("12345678"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed reply"
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None, "stop"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (2, len("streamed reply") // 4 + 1)


# --------------------------------------------------------------------- structured outputs


def test_parse_returns_pydantic_model(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.reply_json({"intent": "complaint", "urgent": True, "summary": "lost bag"})
    done = client.chat.completions.parse(
        model=MODEL, messages=user("my bag is lost"), response_format=Triage
    )
    parsed = done.choices[0].message.parsed
    assert parsed == Triage(intent=Intent.complaint, urgent=True, summary="lost bag")
    assert isinstance(parsed, Triage)


def test_parse_sends_strict_json_schema(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.reply_json({"intent": "praise", "urgent": False, "summary": "thanks"})
    client.chat.completions.parse(model=MODEL, messages=user("love it"), response_format=Triage)

    body = fake_openai.last_request
    assert body["stream"] is False
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert spec["name"] == "Triage"
    assert spec["strict"] is True
    schema = spec["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"intent", "urgent", "summary"}
    assert schema["$defs"]["Intent"]["enum"] == ["complaint", "question", "praise"]
    [call] = fake_openai.calls_to("/v1/chat/completions")
    assert call.headers["x-stainless-helper-method"] == "chat.completions.parse"


@pytest.mark.parametrize(
    ("content", "error_type"),
    [
        ("this is not json", "json_invalid"),
        ('{"intent": "rant", "urgent": false, "summary": "?"}', "enum"),
        ('{"intent": "praise"}', "missing"),
    ],
    ids=["invalid-json", "unknown-enum", "missing-field"],
)
def test_parse_bad_content_raises_pydantic_validation_error(
    fake_openai: FakeOpenAI,  # noqa: F811
    client: OpenAI,
    content: str,
    error_type: str,
) -> None:
    fake_openai.reply_text(content)
    with pytest.raises(pydantic.ValidationError) as info:
        client.chat.completions.parse(model=MODEL, messages=user("x"), response_format=Triage)
    assert not isinstance(info.value, openai.OpenAIError)
    assert error_type in {e["type"] for e in info.value.errors()}
    assert len(fake_openai.requests) == 1  # a parse failure is never retried


def test_parse_length_finish_reason_raises(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.reply_text('{"intent": "compl', finish_reason="length")
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model=MODEL, messages=user("x"), response_format=Triage)


def test_parse_refusal_gives_no_parsed(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.reply_refusal("I can't help with that.")
    message = (
        client.chat.completions.parse(model=MODEL, messages=user("x"), response_format=Triage)
        .choices[0]
        .message
    )
    assert message.parsed is None
    assert message.content is None
    assert message.refusal == "I can't help with that."


# --------------------------------------------------------------------- errors and retries


def test_500_without_retries_raises_internal_server_error(
    fake_openai: FakeOpenAI,  # noqa: F811
    client: OpenAI,
) -> None:
    fake_openai.fail(500)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=user("x"))
    assert info.value.status_code == 500
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "server_error"
    assert len(fake_openai.requests) == 1


def test_429_raises_rate_limit_error(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.fail(429, headers={"retry-after": "1"})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=user("x"))
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "1"
    assert "Rate limit" in info.value.message


def test_500_then_success_is_retried_once(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    fake_openai.fail(500, headers={"retry-after-ms": "10"})
    fake_openai.reply_text("recovered")
    with make_client(fake_openai, max_retries=1) as client:
        started = time.monotonic()
        done = client.chat.completions.create(model=MODEL, messages=user("x"))
        elapsed = time.monotonic() - started

    assert done.choices[0].message.content == "recovered"
    calls = fake_openai.calls_to("chat/completions")
    assert len(calls) == 2
    assert [c.headers["x-stainless-retry-count"] for c in calls] == ["0", "1"]
    assert calls[0].body == calls[1].body
    assert elapsed < 0.4  # retry-after-ms honoured instead of the 0.5s default backoff


def test_x_should_retry_false_disables_retry(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    fake_openai.fail(429, headers={"x-should-retry": "false"})
    with make_client(fake_openai, max_retries=3) as client, pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=user("x"))
    assert len(fake_openai.requests) == 1


def test_hang_next_times_out(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    fake_openai.hang_next()
    with make_client(fake_openai, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model=MODEL, messages=user("x"))
        assert time.monotonic() - started < 1.5
        # only the next request hangs
        done = client.chat.completions.create(model=MODEL, messages=user("y"))
    assert done.choices[0].message.content == "OK"
    assert fake_openai.calls_to("chat/completions")[0].headers["x-stainless-read-timeout"] == "0.5"


def test_delay_next_within_and_beyond_timeout(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.delay_next(0.1)
    started = time.monotonic()
    done = client.chat.completions.create(model=MODEL, messages=user("x"))
    assert time.monotonic() - started >= 0.1
    assert done.choices[0].message.content == "OK"

    fake_openai.delay_next(1.0)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=user("x"), timeout=0.2)


def test_stop_releases_hung_request() -> None:
    fake = start_fake_openai()
    fake.hang_next()
    with make_client(fake, timeout=0.3) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=user("x"))
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2.0


# --------------------------------------------------------------------- recording and auth


def test_authorization_header_carries_api_key(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    client.chat.completions.create(model=MODEL, messages=user("x"))
    [call] = fake_openai.calls_to("chat/completions")
    assert call.headers["authorization"] == f"Bearer {API_KEY}"
    assert call.headers["content-type"] == "application/json"
    assert call.method == "POST"
    assert call.path == "/v1/chat/completions"


def test_wrong_api_key_is_rejected_when_expected() -> None:
    with start_fake_openai(api_key="the-right-key") as fake:
        with make_client(fake) as client, pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model=MODEL, messages=user("x"))
        good = OpenAI(base_url=fake.base_url, api_key="the-right-key", max_retries=0)
        with good:
            assert good.chat.completions.create(model=MODEL, messages=user("x")).choices


def test_all_request_text_and_wait_for(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "system prompt"},
            {"role": "user", "content": [{"type": "text", "text": "handle [EMAIL]"}]},
        ],
    )
    client.chat.completions.create(model=MODEL, messages=user("second"), user="agent-7")

    assert len(fake_openai.wait_for(2, timeout=1.0)) == 2
    text = fake_openai.all_request_text()
    assert text.split("\n") == ["system prompt", "handle [EMAIL]", "second"]
    assert "maya@example.com" not in text
    assert "agent-7" in fake_openai.all_request_json()
    with pytest.raises(FakeOpenAITimeout):
        fake_openai.wait_for(3, timeout=0.1)

    fake_openai.clear()
    assert fake_openai.requests == []


def test_models_list_and_unknown_path(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    models = client.models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]
    assert client.models.retrieve("my-local-model").id == "my-local-model"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="e", input="x")
    assert [c.route for c in fake_openai.calls] == ["models", "models/my-local-model", "embeddings"]


def test_reply_object_and_raw_body(fake_openai: FakeOpenAI, client: OpenAI) -> None:  # noqa: F811
    fake_openai.queue(Reply(content="custom", headers={"x-request-id": "req_custom"}))
    done = client.chat.completions.create(model=MODEL, messages=user("x"))
    assert (done.choices[0].message.content, done._request_id) == ("custom", "req_custom")

    fake_openai.reply_raw({"error": {"message": "bad model", "type": "invalid_request_error"}}, 400)
    with pytest.raises(openai.BadRequestError, match="bad model"):
        client.chat.completions.create(model=MODEL, messages=user("x"))


def test_context_manager_lifecycle() -> None:
    fake = FakeOpenAI()
    with fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert fake.base_url.endswith("/v1")
        body = json.loads(json.dumps(fake.requests))
        assert body == []
    with pytest.raises(RuntimeError):
        _ = fake.port
