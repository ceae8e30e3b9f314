"""The Ollama engine: structured analysis by a local model over Ollama's HTTP API."""

from llm_service.engines.ollama.client import OllamaClient
from llm_service.engines.ollama.engine import OllamaEngine

__all__ = ["OllamaClient", "OllamaEngine"]
