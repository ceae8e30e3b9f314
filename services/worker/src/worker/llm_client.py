"""Call the llm service's `POST /v1/analyze` and classify what can go wrong."""

from __future__ import annotations

import datetime as dt

import httpx
from pydantic import BaseModel, ValidationError

from worker.errors import PermanentError, TransientError


class ActionItem(BaseModel):
    text: str
    owner: str | None = None
    due: str | None = None


class Analysis(BaseModel):
    """The part of the llm reply the pipeline stores (extra fields are ignored)."""

    summary: str
    action_items: list[ActionItem]
    topics: list[str]
    engine: str
    model: str


def _detail(reply: httpx.Response) -> str:
    try:
        detail = reply.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or reply.text[:300] or reply.reason_phrase)


def analyze(
    http: httpx.Client,
    base_url: str,
    text: str,
    *,
    language: str | None,
    reference_date: dt.date | None,
    timeout: float,
) -> Analysis:
    url = f"{base_url.rstrip('/')}/v1/analyze"
    payload: dict[str, object] = {"text": text}
    if language:
        payload["language"] = language
    if reference_date:
        payload["reference_date"] = reference_date.isoformat()
    try:
        reply = http.post(url, json=payload, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise TransientError(f"llm did not answer within {timeout:g}s ({url})") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"llm unreachable at {url}: {exc}") from exc
    if reply.status_code in (408, 425, 429) or reply.status_code >= 500:
        raise TransientError(f"llm answered {reply.status_code}: {_detail(reply)}")
    if reply.status_code >= 400:
        raise PermanentError(f"llm rejected the transcript ({reply.status_code}): {_detail(reply)}")
    try:
        return Analysis.model_validate_json(reply.content)
    except ValidationError as exc:
        raise PermanentError(f"llm returned a reply the worker cannot read: {exc}") from exc
