"""Any OpenAI-compatible chat API: vLLM, llama.cpp's server, LM Studio, Ollama's /v1, hosted."""

from llm_service.engines.openai.client import OpenAIClient
from llm_service.engines.openai.engine import OpenAIEngine

__all__ = ["OpenAIClient", "OpenAIEngine"]
