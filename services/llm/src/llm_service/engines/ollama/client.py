"""A small client for the two Ollama endpoints the service needs: /api/tags and /api/chat.

Replies are validated against a pydantic model; transport failures, 5xx answers and replies
that do not match the schema are retried with exponential backoff, then reported as an
EngineError whose message says what to do. A 4xx is the caller's mistake and is not retried.
"""

from __future__ import annotations

import asyncio
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

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=BaseModel)

# Failing to connect is quick to detect; only the generation itself may take long.
CONNECT_TIMEOUT = 5.0


class _RetryableError(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, final: EngineError) -> None:
        super().__init__(str(final))
        self.final = final


def model_present(wanted: str, available: list[str]) -> bool:
    """Ollama lists 'llama3.2:latest' for a model pulled as 'llama3.2'."""

    def canonical(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return canonical(wanted) in {canonical(name) for name in available}


def pull_hint(model: str) -> str:
    return f"run `inv models.pull` or `ollama pull {model}`"


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve pydantic's `$defs`/`$ref` so any JSON-schema grammar converter can use it."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


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
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.text[:200]


class OllamaClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retries: int,
        http: httpx.AsyncClient | None = None,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._http = http or httpx.AsyncClient()
        self._owns_http = http is None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def list_models(self, timeout: float | None = None) -> list[str]:
        """Names of the pulled models; raises EngineUnavailableError when Ollama does not answer."""
        limit = timeout or self.timeout
        try:
            response = await self._http.get(
                f"{self.base_url}/api/tags",
                timeout=httpx.Timeout(limit, connect=min(limit, CONNECT_TIMEOUT)),
            )
            response.raise_for_status()
            models = response.json()["models"]
            return [str(m.get("name") or m.get("model")) for m in models]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EngineUnavailableError(
                f"Ollama at {self.base_url} does not answer /api/tags ({type(exc).__name__}: "
                f"{exc}); start it with `ollama serve` or set LLM_ENGINE=extractive"
            ) from exc

    async def chat(
        self,
        *,
        model: str,
        messages: list[dict[str, str]],
        reply_model: type[ReplyT],
        options: dict[str, Any] | None = None,
    ) -> ReplyT:
        """One non-streaming /api/chat call whose reply must validate as `reply_model`."""
        payload = {
            "model": model,
            "messages": messages,
            "format": inline_refs(reply_model.model_json_schema()),
            "stream": False,
            "options": options or {},
        }
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._chat_once(payload, reply_model, attempts)
            except _RetryableError as failure:
                if attempt == attempts:
                    raise failure.final from failure
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
                log.warning(
                    "ollama attempt %d/%d failed: %s; retrying in %.2fs",
                    attempt,
                    attempts,
                    failure,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _chat_once(
        self, payload: dict[str, Any], reply_model: type[ReplyT], attempts: int
    ) -> ReplyT:
        model = payload["model"]
        after = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
        try:
            response = await self._http.post(
                f"{self.base_url}/api/chat",
                json=payload,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT)),
            )
        except httpx.TimeoutException as exc:
            raise _RetryableError(
                EngineTimeoutError(
                    f"Ollama did not answer within {self.timeout:g}s (OLLAMA_TIMEOUT) {after}; "
                    f"raise OLLAMA_TIMEOUT or choose a smaller OLLAMA_MODEL"
                )
            ) from exc
        except httpx.TransportError as exc:
            raise _RetryableError(
                EngineUnavailableError(
                    f"Ollama at {self.base_url} is not reachable {after} ({type(exc).__name__}: "
                    f"{exc}); start it with `ollama serve` or set LLM_ENGINE=extractive"
                )
            ) from exc

        if response.status_code == 404:
            raise EngineUnavailableError(
                f"Ollama has no model {model!r} ({_error_text(response)}): {pull_hint(model)}"
            )
        if response.status_code >= 500:
            raise _RetryableError(
                EngineError(
                    f"Ollama failed with HTTP {response.status_code} {after}: "
                    f"{_error_text(response)}"
                )
            )
        if response.status_code >= 400:
            raise EngineError(
                f"Ollama rejected the request with HTTP {response.status_code}: "
                f"{_error_text(response)}"
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
        except ValueError as exc:
            raise invalid("the response body is not JSON") from exc
        if not isinstance(body, dict) or body.get("done") is not True:
            raise invalid("the response is not a finished chat reply (done is not true)")
        content = (body.get("message") or {}).get("content")
        if not isinstance(content, str):
            raise invalid("the reply has no message.content")
        try:
            return reply_model.model_validate_json(content)
        except ValidationError as exc:
            if any(err["type"] == "json_invalid" for err in exc.errors()):
                raise invalid(f"message.content is not JSON: {content[:80]!r}") from exc
            raise invalid(f"message.content does not match the schema: {_describe(exc)}") from exc
