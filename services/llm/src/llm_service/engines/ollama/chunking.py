"""Cutting a long transcript into pieces a model's context can hold, at natural breaks.

Speaker turns (lines) are kept whole when they fit, then sentences, and only a sentence
longer than a chunk is cut between words. Nothing is dropped: the chunks, joined, hold
every word of the transcript.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _split_to_fit(piece: str, limit: int) -> list[str]:
    if len(piece) <= limit:
        return [piece]
    sentences = _SENTENCE_END.split(piece)
    if len(sentences) > 1:
        return [part for s in sentences for part in _split_to_fit(s, limit)]
    out: list[str] = []
    current = ""
    for word in piece.split():
        while len(word) > limit:  # a "word" longer than a chunk: only a hard cut fits it
            if current:
                out.append(current)
                current = ""
            out.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > limit:
            out.append(current)
            candidate = word
        current = candidate
    if current:
        out.append(current)
    return out


def chunk_text(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters, in order."""
    text = text.strip()
    if len(text) <= limit:
        return [text]
    pieces = [
        part
        for line in text.splitlines()
        if line.strip()
        for part in _split_to_fit(line.strip(), limit)
    ]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n{piece}" if current else piece
        if len(candidate) > limit and current:
            chunks.append(current)
            candidate = piece
        current = candidate
    if current:
        chunks.append(current)
    return chunks
