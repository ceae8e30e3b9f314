"""Analysis engines: `extractive` (offline, no model) and `ollama` (a local LLM server)."""
