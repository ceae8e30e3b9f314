"""Transcripts longer than the llm service takes (its LLM_MAX_CHARS; a 4-hour recording is
~200,000 characters): analysed in parts, the parts' analyses merged into one.

The limit is the llm's own setting, read from its refusal (a 422 naming `max_length`), so
the number has one home. Parts end at sentence ends where the text has them (else at a
space), so no sentence and no action item is cut in two.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from llm_service.schemas import ActionItem, AnalyzeResponse

_SENTENCE = re.compile(r"(?<=[.!?\u2026\u3002])\s+")
SUMMARY_PARTS_SEP = "\n\n"


def split(text: str, max_chars: int) -> list[str]:
    """`text` in consecutive parts of at most `max_chars`, cut at sentence ends if possible."""
    parts: list[str] = []
    current = ""
    for sentence in _pieces(text, max_chars):
        joined = f"{current} {sentence}" if current else sentence
        if len(joined) <= max_chars:
            current = joined
            continue
        parts.append(current)
        current = sentence
    if current:
        parts.append(current)
    return parts


def _pieces(text: str, max_chars: int) -> list[str]:
    """Sentences; one longer than a part is cut at spaces (or, lacking them, anywhere)."""
    pieces: list[str] = []
    for sentence in filter(None, (s.strip() for s in _SENTENCE.split(text))):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars + 1)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def merge(
    analyses: list[AnalyzeResponse],
    summarize: Callable[[str], str] | None = None,
) -> AnalyzeResponse:
    """One analysis from the parts' (in order): every action item once, the topics most
    parts share first, and a summary of the parts' summaries (`summarize`, when given and
    their text fits one request; else the parts' summaries one after the other)."""
    summaries = [a.summary.strip() for a in analyses if a.summary.strip()]
    joined = SUMMARY_PARTS_SEP.join(summaries)
    summary = summarize(joined) if summarize is not None and len(summaries) > 1 else joined

    items: list[ActionItem] = []
    seen: set[tuple[str, str]] = set()
    for analysis in analyses:
        for item in analysis.action_items:
            key = (" ".join(item.text.lower().split()), (item.owner or "").lower())
            if key not in seen:
                seen.add(key)
                items.append(item)

    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for analysis in analyses:
        for topic in analysis.topics:
            name = topic.lower()
            counts[name] += 1
            first_seen.setdefault(name, len(first_seen))
    spelled = {t.lower(): t for a in reversed(analyses) for t in a.topics}
    most = max((len(a.topics) for a in analyses), default=0)
    topics = sorted(counts, key=lambda t: (-counts[t], first_seen[t]))[:most]

    notes = list(dict.fromkeys(a.note for a in analyses if a.note))
    first = analyses[0]
    return AnalyzeResponse(
        summary=summary,
        action_items=items,
        topics=[spelled[t] for t in topics],
        engine=first.engine,
        model=first.model,
        note="; ".join(notes) or None,
    )
