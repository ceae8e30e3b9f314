"""POST /v1/embed: sentence vectors for search by meaning."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, HTTPException

from llm_service.api.deps import EmbeddingsDep
from llm_service.embeddings import EmbeddingsUnavailableError
from llm_service.metrics import EMBEDDED_TEXTS
from llm_service.schemas import EmbedRequest, EmbedResponse

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post(
    "/embed",
    responses={
        422: {"description": "No texts, more than 64, or one over 4,000 characters."},
        503: {"description": "No embedding model here (the message says how to pull it)."},
    },
)
async def embed(body: EmbedRequest, model: EmbeddingsDep) -> EmbedResponse:
    """One unit-length vector per text (cosine similarity = dot product)."""
    try:
        vectors = await anyio.to_thread.run_sync(model.embed, body.texts)
    except EmbeddingsUnavailableError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    EMBEDDED_TEXTS.inc(len(body.texts))
    return EmbedResponse(
        model=model.name, dimensions=int(vectors.shape[1]), vectors=vectors.tolist()
    )
