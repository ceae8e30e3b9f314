"""Every metric the worker exports (prefix `mi_`), and the HTTP server that exports them.

Two kinds:

- Recorded by the tasks, in whichever pool process runs them: stage durations, outcomes,
  retries, redeliveries, in-flight tasks, audio seconds. Celery's prefork children each write
  their own files (prometheus_client multiprocess mode, set up by `python -m worker` before
  anything imports prometheus_client); a scrape sums them.
- Read at scrape time, in the main process, from the sources of truth: queue depth and unacked
  messages from Redis, meetings per unfinished status and the age of the oldest queued one from
  Postgres, free disk space of the media and backup directories, and the `.prom` files the
  backup task writes (textfile-collector format). Every replica reports the same queue values:
  alert rules take `max` over instances.

A source that does not answer within a few seconds is reported as `mi_exporter_source_up 0`
and its metrics are left out, so a scrape never hangs on a dead Redis or Postgres, and the
alert rules' `absent()` guards notice the gap.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, Any

from celery import signals
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from common import multiprocess
from meetings.pipeline import ALL_QUEUES, ANALYZE, EMBED, INDEX, PROCESS_MEETING, TRANSCRIBE
from worker import broker

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from worker.config import WorkerSettings

logger = logging.getLogger(__name__)

# Task name -> the `stage` label.
STAGES = {
    PROCESS_MEETING: "process",
    TRANSCRIBE: "transcribe",
    ANALYZE: "analyze",
    INDEX: "index",
    EMBED: "embed",
}
# How a failure came about: the `reason` label of mi_pipeline_failures_total.
FAILURE_REASONS = (
    "permanent",  # bad audio, rejected input: retrying cannot help
    "retries_exhausted",  # whisper/llm/database stayed unreachable
    "redeliveries_exhausted",  # the worker kept dying while running the step
    "soft_time_limit",
    "hard_time_limit",
    "unexpected",  # an exception the step did not classify (a bug)
)
SOURCE_TIMEOUT_S = 3.0
_UNFINISHED = ("queued", "transcribing", "analyzing")

STAGE_SECONDS = Histogram(
    "mi_pipeline_stage_duration_seconds",
    "Time one pipeline task ran, by stage and outcome (ok, skipped, retry, failed, error)",
    ["stage", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
IN_FLIGHT = Gauge(
    "mi_pipeline_tasks_in_flight",
    "Pipeline tasks running now, by stage",
    ["stage"],
    # Summed over the live pool processes; a dead child's value is dropped with it.
    multiprocess_mode="livesum",
)
RETRIES = Counter(
    "mi_pipeline_retries_total",
    "Steps scheduled for another attempt after a transient error",
    ["stage"],
)
REDELIVERIES = Counter(
    "mi_pipeline_redeliveries_total",
    "Task messages delivered again (their worker died or lost Redis while running them)",
    ["stage"],
)
FAILURES = Counter(
    "mi_pipeline_failures_total",
    "Steps that failed their meeting, by stage and reason (a meeting failed again counts again)",
    ["stage", "reason"],
)
FINISHED = Counter(
    "mi_meetings_finished_total", "Meetings that reached done or failed", ["outcome"]
)
TURNAROUND = Histogram(
    "mi_meeting_turnaround_seconds",
    "From upload to done or failed",
    ["outcome"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)
RECOVERED = Counter(
    "mi_meetings_recovered_total",
    "Meetings the sweeper found stalled with no task: queued again, or failed after too many",
    ["outcome"],
)
AUDIO_SECONDS = Counter(
    "mi_audio_seconds_total", "Seconds of recorded audio transcribed", ["engine"]
)


class StageRun:
    """One task's run: its outcome decides the labels its duration is recorded under."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.outcome: str | None = None

    def skipped(self) -> None:
        self.outcome = "skipped"

    def retried(self) -> None:
        self.outcome = "retry"
        RETRIES.labels(self.stage).inc()

    def redelivered(self) -> None:
        REDELIVERIES.labels(self.stage).inc()

    def failed(self, reason: str) -> None:
        self.outcome = "failed"
        FAILURES.labels(self.stage, reason).inc()


@contextmanager
def stage_run(task_name: str) -> Iterator[StageRun]:
    run = StageRun(STAGES.get(task_name, task_name))
    gauge = IN_FLIGHT.labels(run.stage)
    gauge.inc()
    started = time.perf_counter()
    try:
        yield run
    except BaseException:
        # Retry and Ignore are exceptions too: they carry an outcome set by the policy.
        if run.outcome is None:
            run.outcome = "error"
        raise
    else:
        if run.outcome is None:
            run.outcome = "ok"
    finally:
        gauge.dec()
        STAGE_SECONDS.labels(run.stage, run.outcome).observe(time.perf_counter() - started)


def failed_outside_a_run(task_name: str, reason: str) -> None:
    """A failure recorded by Celery's on_failure (hard time limit, unexpected exception)."""
    FAILURES.labels(STAGES.get(task_name, task_name), reason).inc()


def meeting_finished(outcome: str, uploaded_at: datetime | None) -> None:
    FINISHED.labels(outcome).inc()
    if uploaded_at is not None:
        TURNAROUND.labels(outcome).observe(max(0.0, time.time() - uploaded_at.timestamp()))


def meetings_recovered(requeued: int, failed: int) -> None:
    RECOVERED.labels("requeued").inc(requeued)
    RECOVERED.labels("failed").inc(failed)


def audio_transcribed(seconds: float, engine: str) -> None:
    AUDIO_SECONDS.labels(engine).inc(max(0.0, seconds))


# --- read at scrape time ------------------------------------------------------------------


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class PipelineState(Collector):
    """Queue depth, unfinished meetings, disk space and the backup record, read per scrape."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._engine: Any = None

    def collect(self) -> Iterator[Metric]:
        up = _gauge(
            "mi_exporter_source_up",
            "1 when the worker's exporter could read this source at the last scrape",
            ["source"],
        )
        for source, read in (("redis", self._redis), ("postgres", self._postgres)):
            try:
                families = list(read())
            except Exception as exc:
                logger.warning("metrics: cannot read %s: %s", source, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up
        yield from self._disks()
        yield from self._textfiles()

    def _redis(self) -> Iterator[Metric]:
        from redis import Redis

        depth = _gauge("mi_queue_depth", "Task messages waiting in a Celery queue", ["queue"])
        with Redis.from_url(
            self.settings.redis_url,
            socket_timeout=SOURCE_TIMEOUT_S,
            socket_connect_timeout=SOURCE_TIMEOUT_S,
        ) as client:
            pipe = client.pipeline(transaction=False)
            for queue in ALL_QUEUES:
                for key in broker.queue_keys(queue):
                    pipe.llen(key)
            pipe.hlen(broker.UNACKED_KEY)
            *lengths, unacked = pipe.execute()
        steps = 1 + len(broker.PRIORITY_STEPS)
        for index, queue in enumerate(ALL_QUEUES):
            depth.add_metric([queue], sum(lengths[index * steps : (index + 1) * steps]))
        yield depth
        yield GaugeMetricFamily(
            "mi_queue_unacked_messages",
            "Messages taken by workers and not yet acknowledged (running or waiting to retry)",
            value=unacked,
        )

    def _postgres(self) -> Iterator[Metric]:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            # No pool: a connection per scrape, so nothing is inherited by forked children.
            self._engine = create_engine(
                self.settings.database_url,
                poolclass=NullPool,
                connect_args={
                    "connect_timeout": int(SOURCE_TIMEOUT_S),
                    "options": f"-c statement_timeout={int(SOURCE_TIMEOUT_S * 1000)}",
                },
            )
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT status, count(*), "
                    "EXTRACT(EPOCH FROM now() - min(created_at)) FROM meetings "
                    "WHERE status IN ('queued', 'transcribing', 'analyzing') GROUP BY status"
                )
            ).all()
        found = {row[0]: (int(row[1]), float(row[2] or 0)) for row in rows}
        counts = _gauge("mi_meetings", "Meetings not finished yet, by status", ["status"])
        for status in _UNFINISHED:
            counts.add_metric([status], found.get(status, (0, 0.0))[0])
        yield counts
        yield GaugeMetricFamily(
            "mi_oldest_queued_meeting_age_seconds",
            "Age of the oldest meeting still in status queued (0 when none is)",
            value=found.get("queued", (0, 0.0))[1],
        )

    def _disks(self) -> Iterator[Metric]:
        free = _gauge("mi_disk_free_bytes", "Free space for this volume's files", ["volume"])
        size = _gauge("mi_disk_size_bytes", "Size of the filesystem holding a volume", ["volume"])
        for volume, path in (("media", self.settings.media_dir), ("backups", self.backup_dir)):
            if path is None:
                continue
            try:
                usage = shutil.disk_usage(path)
            except OSError:
                continue  # not created yet: absent, which the rules' guards report
            free.add_metric([volume], usage.free)
            size.add_metric([volume], usage.total)
        yield free
        yield size

    @property
    def backup_dir(self) -> Path | None:
        return self.settings.backup_status_dir

    def _textfiles(self) -> Iterator[Metric]:
        """`*.prom` files in BACKUP_STATUS_DIR, as node-exporter's textfile collector reads them."""
        if self.backup_dir is None or not self.backup_dir.is_dir():
            return
        for path in sorted(self.backup_dir.glob("*.prom")):
            try:
                yield from text_string_to_metric_families(path.read_text())
            except (OSError, ValueError) as exc:
                logger.warning("metrics: skipping unreadable %s: %s", path, exc)


class _AllProcesses(Collector):
    """The pool processes' files, read per scrape; live gauges of killed children dropped."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        multiprocess.sweep_dead()
        yield from MultiProcessCollector(None).collect()


class MetricsPortError(OSError):
    """The metrics port could not be bound; the message names the setting."""


def serve(settings: WorkerSettings) -> tuple[WSGIServer, Thread]:
    """Serve /metrics on WORKER_METRICS_HOST:WORKER_METRICS_PORT from this (main) process."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess.active():
        registry.register(_AllProcesses())
    else:  # `--pool solo` or threads: one process holds everything
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(PipelineState(settings))
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    try:
        return start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MetricsPortError(
            f"cannot serve metrics on {host}:{port} (WORKER_METRICS_PORT): "
            f"{exc.strerror or exc}; stop what listens there or set WORKER_METRICS_PORT "
            "to a free port"
        ) from exc


@signals.worker_process_shutdown.connect
def _pool_process_exits(pid: int | None = None, **_: Any) -> None:
    # Sent in the pool process as it exits cleanly; killed ones are swept at scrape time.
    multiprocess.mark_dead(pid or os.getpid())
