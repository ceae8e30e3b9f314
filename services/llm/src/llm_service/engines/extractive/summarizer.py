"""TextRank sentence ranking (Mihalcea & Tarau, 2004), in pure Python.

Sentences are nodes; two sentences are linked by how many content words they share,
normalized by their lengths. PageRank over that graph finds the sentences the rest of the
meeting keeps coming back to; the best few, in transcript order, are the summary.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from llm_service.engines.extractive.text import Sentence, content_stems

DAMPING = 0.85
MAX_ITERATIONS = 100
# L1 change of the whole rank vector (which sums to 1); the order is settled well before.
TOLERANCE = 1e-4
# Sentences with fewer content words ("Okay, sounds good.") rarely summarize anything.
MIN_CONTENT_WORDS = 4
# Skip a candidate that repeats an already chosen sentence this much (Jaccard of stems).
MAX_OVERLAP = 0.5
COMMON_WORD_MIN = 40
COMMON_WORD_SHARE = 10


def summary_length(sentence_count: int) -> int:
    """About the square root of the sentence count: 3 for a chat, 7 for an hour."""
    return max(1, min(7, round(math.sqrt(sentence_count))))


def _similarity_graph(token_sets: Sequence[set[str]]) -> list[dict[int, float]]:
    # Only pairs that share a word have an edge; an inverted index finds them without
    # comparing every pair, which keeps long transcripts fast.
    postings: dict[str, list[int]] = defaultdict(list)
    for i, tokens in enumerate(token_sets):
        for token in tokens:
            postings[token].append(i)
    # A word in a large share of a long transcript's sentences links nearly everything to
    # everything: it adds little to the ranking but makes the pair count quadratic.
    max_postings = max(COMMON_WORD_MIN, len(token_sets) // COMMON_WORD_SHARE)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for members in postings.values():
        if len(members) > max_postings:
            continue
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1 :]:
                shared[a, b] += 1
    graph: list[dict[int, float]] = [{} for _ in token_sets]
    for (a, b), overlap in shared.items():
        norm = math.log(len(token_sets[a]) + 1) + math.log(len(token_sets[b]) + 1)
        weight = overlap / norm
        graph[a][b] = weight
        graph[b][a] = weight
    return graph


def pagerank(graph: Sequence[dict[int, float]]) -> list[float]:
    n = len(graph)
    if n == 0:
        return []
    # Each node's outgoing weights, normalized once, as (target, share) pairs.
    outgoing: list[list[tuple[int, float]]] = []
    for edges in graph:
        total = sum(edges.values())
        outgoing.append([(j, w / total) for j, w in edges.items()] if total else [])
    dangling_nodes = [i for i, links in enumerate(outgoing) if not links]
    scores = [1.0 / n] * n
    for _ in range(MAX_ITERATIONS):
        # Sentences without links share their rank evenly, as in PageRank's dangling nodes.
        dangling = sum(scores[i] for i in dangling_nodes)
        base = (1 - DAMPING) / n + DAMPING * dangling / n
        new = [base] * n
        for i, links in enumerate(outgoing):
            rank = DAMPING * scores[i]
            for j, share in links:
                new[j] += rank * share
        delta = sum(abs(a - b) for a, b in zip(new, scores, strict=True))
        scores = new
        if delta < TOLERANCE:
            break
    return scores


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def summarize(sentences: Sequence[Sentence], limit: int | None = None) -> list[Sentence]:
    """The highest ranked sentences, in the order they were said."""
    if not sentences:
        return []
    limit = summary_length(len(sentences)) if limit is None else limit
    token_sets = [set(content_stems(s.text)) for s in sentences]
    scores = pagerank(_similarity_graph(token_sets))
    order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    substantial = [i for i in order if len(token_sets[i]) >= MIN_CONTENT_WORDS]
    # Fall back to short sentences only when the transcript has nothing longer.
    candidates = substantial or order
    chosen: list[int] = []
    for i in candidates:
        if len(chosen) == limit:
            break
        if any(_jaccard(token_sets[i], token_sets[j]) > MAX_OVERLAP for j in chosen):
            continue
        chosen.append(i)
    return [sentences[i] for i in sorted(chosen)]
