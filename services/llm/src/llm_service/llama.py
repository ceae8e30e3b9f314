"""`python -m llm_service.llama`: llama.cpp's own HTTP server for LLM_ENGINE=local.

The server is llama.cpp's C++ server from the `xllamacpp` wheel (the `[llama]` extra; prebuilt
for CPU, nothing compiled): OpenAI-compatible `/v1/chat/completions` with JSON-schema
constrained decoding, `/health` (503 while the model loads, then 200), `/metrics`. It serves
the one GGUF file in LLM_MODEL_DIR, which `inv models.pull` / `inv up` put there verified
against models.lock, on LLM_HOST:LLAMA_PORT. The llm service talks to it like to any
OpenAI-compatible server.

Exit codes as every service's: 0 after SIGTERM/SIGINT, 2 for bad configuration or a missing
model (one line saying how to bring it), 1 when the server does not start.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from common import entrypoint
from llm_service.config import LLMSettings, get_settings

SERVICE_NAME = "llama"
log = logging.getLogger(__name__)


def gguf_file(directory: Path) -> Path:
    """The model to serve; SystemExit(2) naming the fix when there is not exactly one."""
    found = sorted(directory.glob("*.gguf")) if directory.is_dir() else []
    if len(found) != 1:
        what = "no .gguf file" if not found else f"{len(found)} .gguf files"
        sys.stderr.write(
            f"llama: {what} in LLM_MODEL_DIR={directory}: run `uv run inv models.pull --env "
            "<env>` (it places the GGUF models.lock pins there), or set LLM_ENGINE to another "
            "engine\n"
        )
        raise SystemExit(2)
    return found[0]


def serve(settings: LLMSettings) -> int:
    model = gguf_file(Path(settings.llm_model_dir))
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.model_alias = model.stem
    params.hostnames = [settings.llm_host]
    params.port = settings.llama_port
    # The llm service sizes its parts (LLM_CHUNK_CHARS) to fit this context with the reply.
    params.n_ctx = settings.llama_ctx
    params.n_parallel = settings.llama_parallel
    # One core is left to the rest of the stack: llama.cpp's threads spin-wait on each other,
    # so one of them losing its core to another process slows every token (measured on a busy
    # 2-core machine: 1 thread 2.6 s, 2 threads 20.5 s for the same reply).
    threads = settings.llama_threads or max(1, (os.cpu_count() or 2) - 1)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.endpoint_metrics = True
    log.info("llama.cpp loading %s (%d threads, context %d)", model.name, threads, params.n_ctx)
    stop = _wait_for_stop()
    try:
        server = xllamacpp.Server(params)  # returns once the model is loaded and listening
    except Exception as exc:  # the C++ side reports a port in use, a bad file, no memory
        log.error("llama.cpp did not start: %s", exc)
        return 1
    log.info("llama.cpp serves %s at %s", model.name, server.listening_address)
    signal.sigwait(stop)
    log.info("stopping llama.cpp")
    del server  # its destructor ends the main loop and frees the model
    return 0


def _wait_for_stop() -> set[signal.Signals]:
    """Block SIGTERM/SIGINT in this thread (before the server's threads start, so they inherit
    the mask) and let `sigwait` take them: a requested stop then exits 0."""
    wanted = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    return wanted


def main() -> int:
    return entrypoint.run(SERVICE_NAME, get_settings, serve)


if __name__ == "__main__":
    sys.exit(main())
