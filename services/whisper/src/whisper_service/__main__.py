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

from pydantic import ValidationError

from common import tracing
from common.logging import configure_logging
from whisper_service.config import SERVICE_NAME, WhisperSettings, describe_validation_error
from whisper_service.errors import EngineError
from whisper_service.server import WhisperServer

log = logging.getLogger("whisper_service")


def _fail(message: str, code: int) -> int:
    print(f"whisper: {message}", file=sys.stderr)  # noqa: T201 (the one line a human reads)
    return code


def main() -> int:
    try:
        settings = WhisperSettings()
    except ValidationError as exc:
        return _fail(f"invalid configuration: {describe_validation_error(exc)}", 2)
    configure_logging(SERVICE_NAME, settings.log_level, json_logs=settings.log_json)
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


if __name__ == "__main__":
    sys.exit(main())
