"""Enqueue pipeline work on the Celery broker without importing the worker."""

from __future__ import annotations

import uuid

from celery import Celery

from backend.config import SERVICE_NAME
from meetings.pipeline import PROCESS_MEETING, TASK_ROUTES


class EnqueueError(RuntimeError):
    """The broker did not take the message."""


def make_client(broker_url: str, *, timeout_s: float) -> Celery:
    """A producer-only Celery app: routes and bounded broker timeouts, no task code."""
    app = Celery(SERVICE_NAME, broker=broker_url, set_as_current=False)
    app.conf.update(
        task_routes=TASK_ROUTES,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=timeout_s,
        broker_transport_options={
            "socket_connect_timeout": timeout_s,
            "socket_timeout": timeout_s,
        },
        # Bounded: an upload answers 503 quickly when Redis is down instead of hanging.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
    )
    return app


def enqueue_meeting(client: Celery, meeting_id: uuid.UUID) -> str:
    """Send `meetings.process(meeting_id)`; blocking, so call it from a worker thread."""
    try:
        result = client.send_task(PROCESS_MEETING, args=[str(meeting_id)])
    except Exception as exc:  # kombu raises several connection error types
        raise EnqueueError(f"{type(exc).__name__}: {exc}") from exc
    return str(result.id)
