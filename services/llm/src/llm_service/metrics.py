"""Service-specific metrics, next to the HTTP ones from common.metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ANALYSES = Counter(
    "llm_analyses_total", "Transcripts analyzed, by engine and outcome", ["engine", "outcome"]
)
ANALYSIS_SECONDS = Histogram(
    "llm_analysis_duration_seconds",
    "Time to analyze one transcript",
    ["engine"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
EMBEDDED_TEXTS = Counter("llm_embedded_texts_total", "Texts turned into embedding vectors")
