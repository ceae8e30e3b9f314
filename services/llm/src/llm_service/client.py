"""Client of the llm service, as the worker uses it: a transcript in, an analysis out.

Imports only httpx, pydantic and this package's `schemas`: the worker installs mi-llm without
the [server] extra, so FastAPI, uvicorn and the engines are not there.

    with LLMClient("http://127.0.0.1:8001", timeout=300) as client:
        analysis = client.analyze("Alice will send the report by Friday.", language="en")

Failures come as one of two exceptions, like the whisper client's: LLMUnavailableError
(transient: the service is down, overloaded or slow; retry the work later) and
AnalysisRejectedError (permanent: this transcript will never be analysed as sent).
"""

from __future__ import annotations

import datetime as dt

import httpx
from pydantic import ValidationError

from common import service_auth
from llm_service.schemas import AnalyzeResponse, EmbedResponse

# Statuses a later retry can cure: a timeout, "too early", rate limiting, server trouble.
_TRANSIENT = frozenset({408, 425, 429})


def _refuse_credential(reply: httpx.Response) -> None:
    """A 401 is this deployment's configuration, not the transcript's fault: transient, and
    named, so that fixing SERVICE_TOKEN and retrying works."""
    if reply.status_code == 401:
        raise LLMUnavailableError(
            f"llm refused the service credential ({_detail(reply)}): give this process the "
            "same SERVICE_TOKEN as llm"
        )


class LLMError(Exception):
    """Base of the client's errors."""


class LLMUnavailableError(LLMError):
    """Transient: the service could not be reached or did not answer in time."""


class AnalysisRejectedError(LLMError):
    """Permanent: the service refused the transcript, or replied with something unreadable."""


class TranscriptTooLongError(AnalysisRejectedError):
    """The transcript is longer than the service takes (its LLM_MAX_CHARS, in `max_chars`):
    send it in parts of at most that many characters."""

    def __init__(self, message: str, max_chars: int) -> None:
        super().__init__(message)
        self.max_chars = max_chars


def _length_limit(reply: httpx.Response) -> int | None:
    """The service's character limit, from its 422 for a transcript over LLM_MAX_CHARS."""
    try:
        errors = reply.json().get("detail")
    except (ValueError, AttributeError):
        return None
    for error in errors if isinstance(errors, list) else []:
        if (
            isinstance(error, dict)
            and error.get("type") == "string_too_long"
            and list(error.get("loc") or []) == ["body", "text"]
        ):
            limit = (error.get("ctx") or {}).get("max_length")
            return int(limit) if isinstance(limit, int) and limit > 0 else None
    return None


class EmbeddingsUnavailableError(LLMError):
    """The service has no embedding model (503 from /v1/embed): search stays keyword-only
    until `inv models.pull` brings it."""


def _detail(reply: httpx.Response) -> str:
    try:
        detail = reply.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail or reply.text[:300] or reply.reason_phrase)


class LLMClient:
    """`POST /v1/analyze` with one connection pool; `timeout` bounds each analysis."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        http: httpx.Client | None = None,
        token: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/v1/analyze"
        self.timeout = timeout
        # The service credential (SERVICE_TOKEN), on every request when set.
        self._http = http or httpx.Client(headers={service_auth.HEADER: token} if token else None)
        self._owns_http = http is None

    def analyze(
        self,
        text: str,
        *,
        language: str | None = None,
        reference_date: dt.date | None = None,
    ) -> AnalyzeResponse:
        payload: dict[str, object] = {"text": text}
        if language:
            payload["language"] = language
        if reference_date:
            payload["reference_date"] = reference_date.isoformat()
        try:
            reply = self._http.post(self.url, json=payload, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise LLMUnavailableError(
                f"llm did not answer within {self.timeout:g}s ({self.url})"
            ) from exc
        except httpx.TransportError as exc:
            raise LLMUnavailableError(f"llm unreachable at {self.url}: {exc}") from exc
        if reply.status_code in _TRANSIENT or reply.status_code >= 500:
            raise LLMUnavailableError(f"llm answered {reply.status_code}: {_detail(reply)}")
        _refuse_credential(reply)
        if reply.status_code == 422 and (limit := _length_limit(reply)) is not None:
            raise TranscriptTooLongError(
                f"llm takes at most {limit} characters; the transcript has {len(text)}", limit
            )
        if reply.status_code >= 400:
            raise AnalysisRejectedError(
                f"llm rejected the transcript ({reply.status_code}): {_detail(reply)}"
            )
        try:
            return AnalyzeResponse.model_validate_json(reply.content)
        except ValidationError as exc:
            raise AnalysisRejectedError(
                f"llm returned a reply that is not an analysis: {exc}"
            ) from exc

    def embed(self, texts: list[str]) -> EmbedResponse:
        """Unit-length vectors for `texts` (at most 64 per call)."""
        url = f"{self.base_url}/v1/embed"
        try:
            reply = self._http.post(url, json={"texts": texts}, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise LLMUnavailableError(
                f"llm did not embed within {self.timeout:g}s ({url})"
            ) from exc
        except httpx.TransportError as exc:
            raise LLMUnavailableError(f"llm unreachable at {url}: {exc}") from exc
        if reply.status_code == 503:
            raise EmbeddingsUnavailableError(_detail(reply))
        if reply.status_code in _TRANSIENT or reply.status_code >= 500:
            raise LLMUnavailableError(f"llm answered {reply.status_code}: {_detail(reply)}")
        _refuse_credential(reply)
        if reply.status_code >= 400:
            raise AnalysisRejectedError(
                f"llm refused the texts ({reply.status_code}): {_detail(reply)}"
            )
        try:
            return EmbedResponse.model_validate_json(reply.content)
        except ValidationError as exc:
            raise AnalysisRejectedError(f"llm returned no embeddings: {exc}") from exc

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
