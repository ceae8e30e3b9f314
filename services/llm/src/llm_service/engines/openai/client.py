"""`POST {base}/chat/completions` with structured output, as far as the server supports it.

Servers differ in how they constrain a reply to JSON. The client asks for the strongest form
first and steps down, once per process, when a server says it does not support it:

1. `response_format: {type: json_schema}`: the schema enforced while decoding (OpenAI, vLLM,
   llama.cpp's server, LM Studio, Ollama's /v1);
2. `response_format: {type: json_object}`: any JSON, the schema in the instructions;
3. no `response_format`: the schema in the instructions only.

Whatever the mode, every reply is validated with pydantic: transport failures, 429/5xx and
replies that do not fit are retried with exponential backoff (bounded), then reported as an
EngineError whose message says what to do. Other 4xx are the request's fault: not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from llm_service.engines.base import (
    EngineError,
    EngineTimeoutError,
    EngineUnavailableError,
    InvalidModelReplyError,
)
from llm_service.engines.ollama.client import inline_refs

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=BaseModel)

# Failing to connect is quick to detect; only the generation itself may take long.
CONNECT_TIMEOUT = 5.0
MODES = ("json_schema", "json_object", "prompt")
# What servers say when they do not know a response_format (status 400 or 422 with one of
# these in the error): then the next weaker mode is tried, not the same request again.
_UNSUPPORTED_HINTS = ("response_format", "json_schema", "json_object", "not supported")


class _RetryableError(Exception):
    def __init__(self, final: EngineError) -> None:
        super().__init__(str(final))
        self.final = final


class _UnsupportedModeError(Exception):
    pass


def _describe(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'reply'}: {err['msg']}"
        for err in exc.errors()[:3]
    ]
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str):
        return error[:300]
    return response.text[:300]


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "\nReply with one JSON object that validates against this JSON schema, nothing else:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


class OpenAIClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        timeout: float,
        retries: int,
        http: httpx.AsyncClient | None = None,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_tokens: int = 1024,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_tokens = max_tokens
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.AsyncClient()
        self._owns_http = http is None
        self.mode = MODES[0]  # steps down when the server refuses it

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def _timeout(self, limit: float) -> httpx.Timeout:
        return httpx.Timeout(limit, connect=min(limit, CONNECT_TIMEOUT))

    async def list_models(self, timeout: float | None = None) -> list[str]:
        """Model ids from `GET {base}/models`; EngineUnavailableError when nothing answers."""
        limit = timeout or self.timeout
        try:
            response = await self._http.get(
                f"{self.base_url}/models", headers=self._headers, timeout=self._timeout(limit)
            )
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(
                f"the OpenAI-compatible server at {self.base_url} does not answer "
                f"({type(exc).__name__}: {exc}); start it, fix the base URL, or set "
                "LLM_ENGINE=extractive"
            ) from exc
        if response.status_code in (401, 403):
            raise EngineUnavailableError(
                f"{self.base_url} refused the API key ({response.status_code}: "
                f"{_error_text(response)}): set OPENAI_API_KEY"
            )
        if response.status_code != 200:
            raise EngineUnavailableError(
                f"{self.base_url}/models answered {response.status_code}: "
                f"{_error_text(response)}; is the base URL the API root (ending in /v1)?"
            )
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise EngineUnavailableError(
                f"{self.base_url}/models did not answer with a model list: is it an "
                "OpenAI-compatible API (…/v1)?"
            ) from exc

    def _payload(
        self, model: str, messages: list[dict[str, str]], reply_model: type[BaseModel]
    ) -> dict[str, Any]:
        schema = inline_refs(reply_model.model_json_schema())
        payload: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        if self.mode == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": reply_model.__name__, "schema": schema},
            }
            return payload
        # Weaker modes: the schema travels in the instructions.
        first, *rest = messages
        payload["messages"] = [
            {**first, "content": first["content"] + schema_instruction(schema)},
            *rest,
        ]
        if self.mode == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    async def chat(
        self, *, model: str, messages: list[dict[str, str]], reply_model: type[ReplyT]
    ) -> ReplyT:
        """One chat completion whose reply must validate as `reply_model`."""
        attempts = self.retries + 1
        attempt = 1
        while True:
            try:
                return await self._chat_once(
                    self._payload(model, messages, reply_model), reply_model, attempts
                )
            except _UnsupportedModeError as exc:
                index = MODES.index(self.mode)
                if index + 1 >= len(MODES):
                    raise EngineError(f"{self.base_url} refused every request form: {exc}") from exc
                log.warning("%s does not support %s (%s); using %s", self.base_url,
                            self.mode, exc, MODES[index + 1])  # fmt: skip
                self.mode = MODES[index + 1]
            except _RetryableError as failure:
                if attempt == attempts:
                    raise failure.final from failure
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
                log.warning("chat attempt %d/%d failed: %s; retrying in %.2fs",
                            attempt, attempts, failure, delay)  # fmt: skip
                attempt += 1
                await asyncio.sleep(delay)

    async def _chat_once(
        self, payload: dict[str, Any], reply_model: type[ReplyT], attempts: int
    ) -> ReplyT:
        model = payload["model"]
        after = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
        try:
            response = await self._http.post(
                f"{self.base_url}/chat/completions",
                json=payload,
                headers=self._headers,
                timeout=self._timeout(self.timeout),
            )
        except httpx.TimeoutException as exc:
            raise _RetryableError(
                EngineTimeoutError(
                    f"{self.base_url} did not answer within {self.timeout:g}s {after}; raise "
                    "OPENAI_TIMEOUT or use a smaller or faster model"
                )
            ) from exc
        except httpx.TransportError as exc:
            raise _RetryableError(
                EngineUnavailableError(
                    f"the OpenAI-compatible server at {self.base_url} is not reachable {after} "
                    f"({type(exc).__name__}: {exc}); start it or set LLM_ENGINE=extractive"
                )
            ) from exc
        status = response.status_code
        if status in (401, 403):
            raise EngineUnavailableError(
                f"{self.base_url} refused the API key ({status}: {_error_text(response)}): "
                "set OPENAI_API_KEY"
            )
        if status == 404:
            raise EngineUnavailableError(
                f"{self.base_url} has no model {model!r} or no /chat/completions "
                f"({_error_text(response)}): check OPENAI_MODEL and OPENAI_BASE_URL (…/v1)"
            )
        if status == 429 or status >= 500:
            raise _RetryableError(
                EngineError(
                    f"{self.base_url} failed with HTTP {status} {after}: {_error_text(response)}"
                )
            )
        if status in (400, 422) and "response_format" in payload:
            text = _error_text(response)
            if any(hint in text.lower() for hint in _UNSUPPORTED_HINTS):
                raise _UnsupportedModeError(text)
        if status >= 400:
            raise EngineError(
                f"{self.base_url} rejected the request with HTTP {status}: {_error_text(response)}"
            )
        return self._validated(response, reply_model, model, after)

    @staticmethod
    def _validated(
        response: httpx.Response, reply_model: type[ReplyT], model: str, after: str
    ) -> ReplyT:
        def invalid(reason: str) -> _RetryableError:
            return _RetryableError(
                InvalidModelReplyError(
                    f"model {model!r} did not reply with the expected JSON {after}: {reason}"
                )
            )

        try:
            body = response.json()
            choice = body["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise invalid("the response is not a chat completion (no choices[0].message)") from exc
        if not isinstance(content, str):
            raise invalid("the reply has no message content")
        if choice.get("finish_reason") == "length":
            raise invalid("the reply was cut off at max_tokens before the JSON ended")
        try:
            return reply_model.model_validate_json(_strip_fences(content))
        except ValidationError as exc:
            if any(err["type"] == "json_invalid" for err in exc.errors()):
                raise invalid(f"the content is not JSON: {content[:80]!r}") from exc
            raise invalid(f"the content does not match the schema: {_describe(exc)}") from exc


def _strip_fences(content: str) -> str:
    """Without a decoding constraint, models like to wrap JSON in a ```json fence."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text
