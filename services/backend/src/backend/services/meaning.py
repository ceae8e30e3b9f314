"""What the backend asks the llm service for: a query's embedding, an answer over passages.

Query vectors are cached (bounded LRU): people repeat searches, paginate and refine, and a
cached query costs no embedding call at all. Failures come back as one exception whose message
says why, so search can fall back to keywords and say so.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import httpx

EMBED_TIMEOUT_S = 2.0
CACHE_SIZE = 2048


class MeaningUnavailableError(Exception):
    """The llm service cannot embed or answer now; the message says why."""


class QueryEmbedder:
    def __init__(self, http: httpx.AsyncClient, llm_url: str, size: int = CACHE_SIZE) -> None:
        self.http = http
        self.url = f"{llm_url.rstrip('/')}/v1/embed"
        self.size = size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()

    async def embed(self, query: str) -> list[float]:
        key = " ".join(query.lower().split())
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        body = await _post(self.http, self.url, {"texts": [query]}, EMBED_TIMEOUT_S)
        vector: list[float] = body["vectors"][0]
        self._cache[key] = vector
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return vector


async def answer(
    http: httpx.AsyncClient,
    llm_url: str,
    question: str,
    passages: list[dict[str, str]],
    timeout: float,
) -> dict[str, Any]:
    return await _post(
        http,
        f"{llm_url.rstrip('/')}/v1/answer",
        {"question": question, "passages": passages},
        timeout,
    )


async def _post(http: httpx.AsyncClient, url: str, payload: dict[str, Any], timeout: float) -> Any:
    try:
        reply = await http.post(url, json=payload, timeout=timeout)
    except httpx.TimeoutException:
        raise MeaningUnavailableError(
            f"the llm service did not answer within {timeout:g}s"
        ) from None
    except httpx.TransportError as exc:
        raise MeaningUnavailableError(f"the llm service is unreachable ({exc})") from None
    if reply.status_code != 200:
        try:
            detail = reply.json().get("detail")
        except ValueError:
            detail = reply.text[:200]
        raise MeaningUnavailableError(f"the llm service answered {reply.status_code}: {detail}")
    return reply.json()
