"""The offline engine: TextRank summary, rule-based action items, RAKE-like topics."""

from llm_service.engines.extractive.engine import MODEL_NAME, ExtractiveEngine, analyze_text

__all__ = ["MODEL_NAME", "ExtractiveEngine", "analyze_text"]
