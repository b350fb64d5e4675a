"""The LLM client on the openai SDK: OpenAI or any OpenAI-compatible server
(Ollama, vLLM, gateways) via `OPENAI_BASE_URL`.

One structured-output call per request (`chat.completions.parse` with a pydantic
schema), its answer capped at `max_tokens`. Every failure — timeout, HTTP error,
refusal, invalid JSON, a value outside the schema, an answer cut short by the cap —
becomes `LLMError`, and the caller falls back to the offline reading.
The SDK's defaults (2 retries, 600 s timeout) are replaced by the config's.
"""

from __future__ import annotations

import logging
from typing import TypeVar

import openai
from pydantic import BaseModel, ValidationError

from bot.ai import LLMError, Usage
from bot.errors import CredentialRejected, DependencyUnreachable

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class OpenAILLM:
    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout: float = 20.0,
        max_retries: int = 2,
        max_tokens_param: str = "max_completion_tokens",
    ) -> None:
        self.model = model
        self.max_tokens_param = max_tokens_param
        self.client = openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    def structured(
        self, *, system: str, user: str, schema: type[M], max_tokens: int | None = None
    ) -> tuple[M, Usage]:
        # The cap goes under the name the server knows; an answer cut short by it ends
        # with finish_reason "length", which parse() raises: rejected whole, like bad JSON.
        cap = {self.max_tokens_param: max_tokens} if max_tokens else {}
        try:
            completion = self.client.chat.completions.parse(
                model=self.model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                response_format=schema,
                temperature=0.2,
                extra_body=cap or None,
            )
        except (openai.OpenAIError, ValidationError, ValueError) as exc:
            raise LLMError(f"{exc.__class__.__name__}: {str(exc)[:200]}") from None
        choice = completion.choices[0] if completion.choices else None
        parsed = choice.message.parsed if choice else None
        if parsed is None:
            refusal = choice.message.refusal if choice else None
            raise LLMError(f"no structured answer ({refusal or 'empty'})")
        usage = completion.usage
        return parsed, Usage(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def check(self) -> str:
        """At start-up: the endpoint answers and takes the key (`models.list`, the cheapest
        call there is). CredentialRejected for a refused key, DependencyUnreachable else."""
        try:
            models = self.client.with_options(timeout=5.0, max_retries=0).models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise CredentialRejected(
                f"OPENAI_API_KEY: the LLM endpoint refused the key (HTTP {exc.status_code})"
            ) from None
        except openai.NotFoundError:
            return "reachable (no model list)"  # some compatible servers have no /models
        except openai.OpenAIError as exc:
            raise DependencyUnreachable(
                f"cannot reach the LLM ({exc.__class__.__name__})"
            ) from None
        names = {m.id for m in models.data}
        if names and self.model not in names:
            log.warning("the LLM endpoint does not list the model %r; calls may fail", self.model)
        return f"{len(names)} model(s)"
