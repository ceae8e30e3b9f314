"""Ask your meetings: the best passages retrieved, answered with citations by the LLM."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.api import API_PREFIX
from backend.api.deps import ReadConnectionDep, SettingsDep
from backend.schemas import AskIn, AskOut, CitationOut
from backend.services import meaning, search
from backend.services.meaning import MeaningUnavailableError, QueryEmbedder

router = APIRouter(prefix=API_PREFIX, tags=["ask"])

PASSAGES = 6
MIN_SIMILARITY = 0.3
"""Below this cosine similarity a passage does not speak to the question (all-MiniLM-L6-v2):
a question whose best passage is under it has no support in the meetings."""
NO_SUPPORT = "Nothing in your meetings answers this question."


def clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@router.post(
    "/ask",
    summary="Answer a question from the meetings, citing meeting and moment",
    responses={422: {"description": "An empty, blank or over-long question."}},
)
async def ask(
    body: AskIn, request: Request, conn: ReadConnectionDep, settings: SettingsDep
) -> AskOut:
    """Retrieves the passages nearest the question by meaning, then asks the configured LLM to
    answer from them only. With the extractive engine (no model) the answer is null and the
    cited passages are the result; a question nothing supports says so, never invents. When
    search by meaning is unavailable (the llm service down, no embedding model), the passages
    sharing the question's words are cited instead, without a generated answer."""
    embedder: QueryEmbedder = request.app.state.embedder
    try:
        vector = await embedder.embed(body.question)
    except MeaningUnavailableError as exc:
        return await _by_keyword(conn, body.question, str(exc))
    found = await search.nearest_chunks(conn, vector, limit=PASSAGES)
    passages = [p for p in found if p.similarity >= MIN_SIMILARITY]
    if not passages:
        return AskOut(question=body.question, answer=None, supported=False, citations=[],
                      engine=None, model=None, note=NO_SUPPORT)  # fmt: skip
    cited = _citations(passages)
    try:
        reply = await meaning.answer(
            request.app.state.http,
            settings.llm_url,
            body.question,
            [{"title": c.title, "at": c.at, "text": c.text} for c in cited],
            settings.ask_timeout_s,
        )
    except MeaningUnavailableError as exc:
        return AskOut(question=body.question, answer=None, supported=None, citations=cited,
                      engine=None, model=None,
                      note=f"no answer was generated ({exc}); the passages below are the "
                           "closest in meaning")  # fmt: skip
    if reply.get("supported") is False:
        return AskOut(question=body.question, answer=None, supported=False, citations=[],
                      engine=reply["engine"], model=reply["model"], note=NO_SUPPORT)  # fmt: skip
    numbers = reply.get("citations") or []
    chosen = [c for c in cited if c.number in numbers] if numbers else cited
    note = reply.get("note")
    if reply.get("answer") is None and note is None:
        note = "the extractive engine generates no answers: the closest passages are cited"
    return AskOut(
        question=body.question,
        answer=reply.get("answer"),
        supported=reply.get("supported"),
        citations=chosen,
        engine=reply["engine"],
        model=reply["model"],
        note=note,
    )


def _citations(passages: list[search.Passage]) -> list[CitationOut]:
    return [
        CitationOut(
            number=i,
            meeting_id=p.meeting_id,
            title=p.title,
            segment=p.segment,
            start_seconds=p.start_seconds,
            at=clock(p.start_seconds),
            text=p.text,
            similarity=round(p.similarity, 4),
        )
        for i, p in enumerate(passages, start=1)
    ]


async def _by_keyword(conn: ReadConnectionDep, question: str, why: str) -> AskOut:
    """The fallback when meaning is out of reach: cite what shares the question's words."""
    passages = await search.keyword_passages(conn, question, limit=PASSAGES)
    note = (
        f"search by meaning is unavailable ({why}): the passages below share words with the "
        "question, and no answer was generated"
        if passages
        else f"{NO_SUPPORT} (search by meaning is unavailable: {why}; no passage shares the "
        "question's words)"
    )
    return AskOut(question=question, answer=None, supported=None if passages else False,
                  citations=_citations(passages), engine=None, model=None, note=note)  # fmt: skip
