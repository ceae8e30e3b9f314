"""Ollama models through the Ollama server's own API: /api/tags to look, /api/pull to fetch.

/api/pull streams NDJSON progress lines (`{"status": "pulling <digest>", "digest": ...,
"total": ..., "completed": ...}`), ends with `{"status": "success"}`, and reports failures as
`{"error": "..."}` lines, sometimes after a 200 status. The digest that identifies a pulled model
is the manifest digest /api/tags returns; `ollama list` shows its first 12 hex digits as ID.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx

from ops.models.files import Bars, NoBars


class OllamaUnreachableError(Exception):
    """No Ollama server answers at the URL."""


class OllamaPullError(Exception):
    """The server refused or failed the pull; the message is its own error text."""


def canonical(name: str) -> str:
    """Ollama lists a model pulled as 'llama3.2' under 'llama3.2:latest'."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def manifest_path(name: str) -> str:
    """Where a model's manifest lives under the models directory (for copying by hand)."""
    model, tag = canonical(name).rsplit(":", 1)
    namespace = model if "/" in model else f"library/{model}"
    return f"manifests/registry.ollama.ai/{namespace}/{tag}"


@dataclass(frozen=True)
class OllamaTimeouts:
    connect: float = 2.0  # a local server answers at once; a dead one should not hold us up
    read: float = 10.0  # /api/tags
    pull_read: float = 120.0  # between two progress lines of a pull (verifying can be slow)
    total: float = 3600.0


class Ollama:
    def __init__(self, url: str, timeouts: OllamaTimeouts | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeouts = timeouts or OllamaTimeouts()

    def _client(self, read: float) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(read, connect=self.timeouts.connect)
        )

    def installed(self) -> dict[str, str]:
        """Every model the server has, by canonical name, with its manifest digest (hex)."""
        try:
            with self._client(self.timeouts.read) as client:
                response = client.get("/api/tags")
        except httpx.TransportError as exc:
            raise OllamaUnreachableError(
                f"no Ollama server answers at {self.url} ({exc or type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise OllamaUnreachableError(f"{self.url}/api/tags answered {response.status_code}")
        try:
            models = response.json()["models"]
            return {
                canonical(m["name"]): str(m["digest"]).removeprefix("sha256:") for m in models or []
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise OllamaUnreachableError(
                f"{self.url} answered /api/tags with something that is not Ollama's model list"
            ) from exc

    def pull(self, name: str, bars: Bars | None = None) -> list[str]:
        """Pull `name` through the server, drawing progress; returns the status lines seen."""
        bars = bars or NoBars()
        deadline = time.monotonic() + self.timeouts.total
        layers: dict[str, int] = {}
        statuses: list[str] = []
        try:
            with (
                self._client(self.timeouts.pull_read) as client,
                client.stream("POST", "/api/pull", json={"model": name, "stream": True}) as reply,
            ):
                if reply.status_code != 200:
                    reply.read()
                    raise OllamaPullError(_error_text(reply))
                for line in reply.iter_lines():
                    if not line.strip():
                        continue
                    message = _parse(line)
                    if "error" in message:
                        raise OllamaPullError(str(message["error"]))
                    status = str(message.get("status", ""))
                    if status and (not statuses or statuses[-1] != status):
                        statuses.append(status)
                    digest = message.get("digest")
                    if isinstance(digest, str) and digest:
                        total = _int(message.get("total"))
                        if digest not in layers:
                            layers[digest] = bars.start(f"{name} {digest[7:19]}", total)
                        bars.update(layers[digest], _int(message.get("completed")) or 0, total)
                    if status == "success":
                        return statuses
                    if time.monotonic() > deadline:
                        raise OllamaPullError(
                            "the pull's time limit ran out; run it again (Ollama resumes it)"
                        )
        except httpx.TimeoutException as exc:
            raise OllamaPullError(
                f"the Ollama server sent no progress for {self.timeouts.pull_read:.0f} s "
                f"({type(exc).__name__}); run it again (Ollama resumes it)"
            ) from exc
        except httpx.TransportError as exc:
            raise OllamaUnreachableError(
                f"lost the Ollama server at {self.url} ({exc or type(exc).__name__})"
            ) from exc
        raise OllamaPullError(
            f"the pull stream ended without success (last status: {statuses[-1:] or 'none'})"
        )


def _parse(line: str) -> dict[str, object]:
    try:
        message = json.loads(line)
    except ValueError:
        raise OllamaPullError(f"the server sent a line that is not JSON: {line[:200]!r}") from None
    if not isinstance(message, dict):
        raise OllamaPullError(f"the server sent an unexpected line: {line[:200]!r}")
    return message


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error_text(reply: httpx.Response) -> str:
    try:
        return str(reply.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"the server answered {reply.status_code}: {reply.text[:200]}"
