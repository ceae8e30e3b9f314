"""`python -m worker [celery worker options]`: start a worker on the configured queues.

Defaults come from the environment (WORKER_QUEUES, WORKER_CONCURRENCY, LOG_LEVEL); any
option given on the command line is passed to `celery worker` and wins, e.g.

    python -m worker --queues transcribe --concurrency 2
    python -m worker --pool solo --loglevel DEBUG

Configuration problems end the process with one line on stderr and exit status 2; a metrics
port (WORKER_METRICS_PORT) that is taken, with exit status 1.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from worker.config import WorkerSettings, get_settings


def describe_config_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = "is not set" if error["type"] == "missing" else error["msg"]
        problems.append(f"{key} {message}" if error["loc"] else message)
    return "worker: invalid configuration: " + "; ".join(problems)


def worker_argv(settings: WorkerSettings, extra: list[str]) -> list[str]:
    argv = ["worker", f"--queues={settings.worker_queues}", f"--loglevel={settings.log_level}"]
    if settings.worker_concurrency is not None:
        argv.append(f"--concurrency={settings.worker_concurrency}")
    # Later options win in Celery's parser: the command line overrides the environment.
    return argv + extra


def main(argv: list[str] | None = None) -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(describe_config_error(exc), file=sys.stderr)  # noqa: T201 - the CLI's one line
        raise SystemExit(2) from None

    # Before anything imports prometheus_client: the pool processes Celery forks must each
    # write their own metric files, which the main process's /metrics adds up.
    from common import multiprocess

    multiprocess.prepare("worker", settings.worker_metrics_port)
    from worker import metrics

    try:
        metrics.serve(settings)
    except metrics.MetricsPortError as exc:
        print(f"worker: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's one line
        raise SystemExit(1) from None

    from worker.celery_app import app

    # Celery handles SIGTERM as a warm shutdown: running tasks finish, then it exits 0.
    app.worker_main(worker_argv(settings, sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
