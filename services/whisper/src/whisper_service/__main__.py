"""`python -m whisper_service`: the speech-to-text gRPC server, configured from WHISPER_* env.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for bad configuration or an engine
that cannot start (the one-line message says what to do), 1 when a port cannot be bound.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
from types import FrameType

from common import entrypoint, tracing
from whisper_service.config import SERVICE_NAME, WhisperSettings, get_settings
from whisper_service.errors import EngineError
from whisper_service.server import WhisperServer

log = logging.getLogger("whisper_service")


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{SERVICE_NAME}: {message}\n")  # the one line a human reads
    return code


def serve(settings: WhisperSettings) -> int:
    tracing.setup(SERVICE_NAME, settings.otel_exporter_otlp_endpoint, settings.app_env)

    # SimpleQueue.put is safe inside a signal handler (Event.set can deadlock there).
    events: queue.SimpleQueue[str | EngineError] = queue.SimpleQueue()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        events.put(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = WhisperServer(settings)
    try:
        server.start()
    except OSError as exc:
        server.stop(0)
        return _fail(str(exc), 1)

    def load() -> None:
        try:
            server.load_engine()
        except EngineError as exc:
            events.put(exc)

    # Loading takes seconds (minutes for a large model); health answers NOT_SERVING meanwhile.
    threading.Thread(target=load, name="engine-loader", daemon=True).start()
    event = events.get()
    if isinstance(event, EngineError):
        log.error("engine failed to start: %s", event)
        server.stop(0)
        return _fail(str(event), 2)
    log.info("received %s", event)
    server.stop()
    return 0


def main() -> int:
    return entrypoint.run(SERVICE_NAME, get_settings, serve)


if __name__ == "__main__":
    sys.exit(main())
