"""`python -m worker [celery worker options]`: start a worker on the configured queues.

Defaults come from the environment (WORKER_QUEUES, WORKER_CONCURRENCY, LOG_LEVEL); any
option given on the command line is passed to `celery worker` and wins, e.g.

    python -m worker --queues transcribe --concurrency 2
    python -m worker --pool solo --loglevel DEBUG

Exit codes: 0 after a warm shutdown (SIGTERM: running tasks finish first), 2 for bad
configuration (one line on stderr naming each bad key), 1 when the metrics port
(WORKER_METRICS_PORT) is taken, Celery's own codes otherwise.
"""

from __future__ import annotations

import sys

from common import entrypoint
from worker.config import SERVICE_NAME, WorkerSettings, get_settings


def worker_argv(settings: WorkerSettings, extra: list[str]) -> list[str]:
    argv = ["worker", f"--queues={settings.worker_queues}", f"--loglevel={settings.log_level}"]
    if settings.worker_concurrency is not None:
        argv.append(f"--concurrency={settings.worker_concurrency}")
    # Later options win in Celery's parser: the command line overrides the environment.
    return argv + extra


def main(argv: list[str] | None = None) -> int:
    def serve(settings: WorkerSettings) -> int:
        # Before anything imports prometheus_client: the pool processes Celery forks must each
        # write their own metric files, which the main process's /metrics adds up.
        from common import multiprocess

        multiprocess.prepare(SERVICE_NAME, settings.worker_metrics_port)
        from worker import metrics

        try:
            metrics.serve(settings)
        except metrics.MetricsPortError as exc:
            sys.stderr.write(f"{SERVICE_NAME}: {exc}\n")  # the one line a human reads
            return 1

        from worker.celery_app import app

        # Celery handles SIGTERM as a warm shutdown: running tasks finish, then it exits 0.
        app.worker_main(worker_argv(settings, sys.argv[1:] if argv is None else argv))
        return 0

    return entrypoint.run(SERVICE_NAME, get_settings, serve)


if __name__ == "__main__":
    sys.exit(main())
