"""The Celery application. `celery --app worker.celery_app ...` and `python -m worker` use it.

Configuration is applied when Celery first needs it (`on_configure`), not at import, so
importing this module (tests, type checking, `inspect ping` wrappers) needs no environment.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from common.logging import configure_logging
from meetings.pipeline import QUEUE_PIPELINE, TASK_ROUTES
from worker.config import SERVICE_NAME, WorkerSettings, get_settings

logger = logging.getLogger(__name__)


def celery_config(settings: WorkerSettings) -> dict[str, Any]:
    """Celery settings derived from ours; each reliability choice says why."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # An unacked message (its worker was killed) becomes visible again after this.
            "visibility_timeout": settings.worker_visibility_timeout,
            # Scan for such messages every `interval` seconds (throttle 1: every scan runs).
            "unacked_restore_interval": settings.worker_restore_interval,
            "unacked_restore_throttle": 1,
        },
        "task_routes": TASK_ROUTES,
        "task_default_queue": QUEUE_PIPELINE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        # Ack after the task ran, so a crash mid-task means redelivery, never a lost meeting.
        "task_acks_late": True,
        # A pool process killed mid-task (OOM, SIGKILL) requeues the message instead of
        # acking it; deliveries are counted per task so a poison message cannot loop forever.
        "task_reject_on_worker_lost": True,
        # Reserve one task at a time: long tasks must not sit prefetched behind another.
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.worker_soft_time_limit,
        "task_time_limit": settings.worker_time_limit,
        # With late acks, tasks still running when the broker connection drops will be
        # redelivered anyway; cancelling them avoids running each one twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # SIGTERM (a deploy, a scale-down, `inv down`) is Celery's warm shutdown: running
        # tasks finish (every stop grace period exceeds WORKER_TIME_LIMIT, so none is killed
        # and none uses up a delivery) and the messages taken but not started, a retry's
        # countdown included, go back to Redis at once. A cold shutdown (SIGQUIT, a second
        # Ctrl+C) gives running tasks this long, then hands them back to Redis too...
        "worker_soft_shutdown_timeout": settings.worker_soft_shutdown_timeout,
        # ... even when none runs, so the retries it holds are handed back, not dropped.
        "worker_enable_soft_shutdown_on_idle": True,
        # Sending the next step (or a retry) rides out a Redis restart instead of breaking the
        # chain: ~15 s of attempts, the time a supervised or orchestrated Redis takes to return.
        "task_publish_retry_policy": {
            "max_retries": 15,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


app = Celery("worker", include=["worker.tasks"])
# Every worker's timer that keeps lost meetings from staying stuck (see worker/sweeper.py).
app.steps["worker"].add("worker.sweeper:SweepTimer")


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    sender.conf.update(celery_config(get_settings()))


@signals.setup_logging.connect
def _setup_logging(loglevel: str | int | None = None, **_: Any) -> None:
    # Connecting to this signal stops Celery from installing its own handlers.
    settings = get_settings()
    level = loglevel if isinstance(loglevel, str) else settings.log_level
    if isinstance(loglevel, int):
        level = logging.getLevelName(loglevel)
    configure_logging(SERVICE_NAME, level, json_logs=settings.log_json)
