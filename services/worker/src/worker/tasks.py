"""The Celery tasks: `meetings.process` starts transcribe -> analyze -> index.

Each step is its own task on its own queue, so transcription workers and analysis workers
scale separately. Every task runs through `_run_step`, which applies the same policy:

- delivery counting: a message delivered more than WORKER_MAX_DELIVERIES times (its workers
  keep dying) fails the meeting instead of looping;
- transient errors (whisper/llm/database unreachable) retry with exponential backoff and
  jitter, at most WORKER_MAX_RETRIES times, then fail the meeting saying why;
- permanent errors and time limits fail the meeting at once, with the reason;
- a deleted or already finished meeting ends the chain quietly.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

from celery import Task, chain
from celery.exceptions import Ignore, SoftTimeLimitExceeded, TimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerError
from psycopg.errors import ForeignKeyViolation
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from meetings.pipeline import ANALYZE, EMBED, INDEX, PROCESS_MEETING, SWEEP, TRANSCRIBE
from worker import metrics, resources, store, sweeper
from worker.celery_app import app
from worker.deliveries import count_delivery
from worker.errors import MeetingFinishedError, MeetingGoneError, PermanentError, TransientError
from worker.steps import analyze as analyze_step
from worker.steps import embed as embed_step
from worker.steps import index as index_step
from worker.steps import transcribe as transcribe_step

logger = logging.getLogger(__name__)

Step = Callable[[resources.Resources, uuid.UUID], object]


def backoff_seconds(retries: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter, so retries of many meetings do not arrive together."""
    ceiling = min(cap, base * 2**retries)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


def _fail(meeting_id: uuid.UUID, reason: str) -> None:
    res = resources.get()
    with res.sessions() as session, session.begin():
        # Counted once per meeting: a second failure (a redelivered message) only rewrites why.
        uploaded_at = store.lock_unfinished(session, meeting_id)
        recorded = store.mark_failed(session, meeting_id, reason)
    if recorded:
        logger.warning("meeting %s failed: %s", meeting_id, reason)
    if recorded and uploaded_at is not None:
        metrics.meeting_finished("failed", uploaded_at)


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        logger.error("dropping a task for the malformed meeting id %r", raw)
        raise Ignore() from None


class PipelineTask(Task):
    """Base of every pipeline task: records failures the step itself could not handle."""

    step_name = "pipeline"

    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: Any, einfo: Any
    ) -> None:
        # Reached for unexpected exceptions and for the hard time limit (the pool process was
        # killed, so this runs in the worker's main process).
        raw_id = args[0] if args else kwargs.get("meeting_id")
        if isinstance(exc, TimeLimitExceeded):
            metrics.failed_outside_a_run(self.name, "hard_time_limit")
            reason = (
                f"{self.step_name}: killed after the hard time limit "
                f"({resources.get().settings.worker_time_limit:g}s, WORKER_TIME_LIMIT)"
            )
        else:
            metrics.failed_outside_a_run(self.name, "unexpected")
            reason = f"{self.step_name}: unexpected error {type(exc).__name__}: {exc}"
        try:
            _fail(uuid.UUID(str(raw_id)), reason)
        except Exception:
            logger.exception("could not record the failure of meeting %s", raw_id)


def _run_step(task: PipelineTask, raw_id: str, step: Step, *, leased: bool = True) -> None:
    meeting_id = _parse_id(raw_id)
    with metrics.stage_run(task.name) as run:
        try:
            _run_step_policy(task, meeting_id, _leased(step) if leased else step, run)
        except SoftTimeLimitExceeded:
            run.failed("soft_time_limit")
            _fail(
                meeting_id,
                f"{task.step_name}: took longer than "
                f"{resources.get().settings.worker_soft_time_limit:g}s "
                "(WORKER_SOFT_TIME_LIMIT); raise it for long recordings",
            )
            raise Ignore() from None


def _run_step_policy(
    task: PipelineTask, meeting_id: uuid.UUID, step: Step, run: metrics.StageRun
) -> None:
    res = resources.get()
    settings = res.settings
    retries = int(task.request.retries or 0)

    try:
        # Redis or Postgres failing here (a restart, a failover) is as transient as anywhere
        # in the step: retried below, never a failed meeting.
        _count_delivery(task, meeting_id, run, res)
        step(res, meeting_id)
    except (MeetingGoneError, MeetingFinishedError) as exc:
        logger.info("meeting %s: %s skipped: %s", meeting_id, task.step_name, exc)
        run.skipped()
        raise Ignore() from None
    except PermanentError as exc:
        run.failed("permanent")
        _fail(meeting_id, f"{task.step_name}: {exc}")
        raise Ignore() from None
    except IntegrityError as exc:
        if not isinstance(exc.orig, ForeignKeyViolation):
            raise
        # The meeting was deleted between our read and our insert.
        logger.info("meeting %s: %s skipped: deleted meanwhile", meeting_id, task.step_name)
        run.skipped()
        raise Ignore() from None
    except (TransientError, OperationalError, InterfaceError, BrokerError, RedisError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if retries >= settings.worker_max_retries:
            run.failed("retries_exhausted")
            _fail(
                meeting_id,
                f"{task.step_name}: gave up after {retries + 1} attempts: {reason}",
            )
            raise Ignore() from None
        countdown = backoff_seconds(
            retries, settings.worker_retry_backoff, settings.worker_retry_backoff_max
        )
        logger.warning(
            "meeting %s: %s failed (%s); retry %d/%d in %.1fs",
            meeting_id,
            task.step_name,
            reason,
            retries + 1,
            settings.worker_max_retries,
            countdown,
        )
        run.retried()
        raise task.retry(countdown=countdown, max_retries=settings.worker_max_retries) from None


def _count_delivery(
    task: PipelineTask, meeting_id: uuid.UUID, run: metrics.StageRun, res: resources.Resources
) -> None:
    """Count this delivery; fail the meeting when its message keeps killing workers."""
    settings = res.settings
    deliveries = count_delivery(res.redis, str(task.request.id), int(task.request.retries or 0))
    if deliveries > 1:
        run.redelivered()
    if deliveries > settings.worker_max_deliveries:
        run.failed("redeliveries_exhausted")
        _fail(
            meeting_id,
            f"{task.step_name}: the worker died {deliveries - 1} times while running this step "
            "(killed, out of memory, crashed or cut off from Redis); giving up, see the worker "
            "logs.",
        )
        raise Ignore()
    if deliveries > 1:
        logger.warning(
            "meeting %s: %s delivered again (%d of at most %d)",
            meeting_id,
            task.step_name,
            deliveries,
            settings.worker_max_deliveries,
        )


def _leased(step: Step) -> Step:
    """`step`, run holding the meeting's lease: the sweeper never starts a step a second time
    while it runs (not even when Redis lost this task's message meanwhile)."""

    def run(res: resources.Resources, meeting_id: uuid.UUID) -> object:
        with res.sessions() as session, session.begin():
            store.take_lease(session, meeting_id, res.settings.worker_time_limit)
        try:
            return step(res, meeting_id)
        finally:
            try:
                with res.sessions() as session, session.begin():
                    store.release_lease(session, meeting_id)
            except (OperationalError, InterfaceError) as exc:
                # The lease then runs out by itself (WORKER_TIME_LIMIT); the sweeper waits.
                logger.warning("meeting %s: lease not released: %s", meeting_id, exc)

    return run


def _start(res: resources.Resources, meeting_id: uuid.UUID) -> None:
    with res.sessions() as session:
        store.active_meeting(session, meeting_id)
    ident = str(meeting_id)
    chain(transcribe.si(ident), analyze.si(ident), index.si(ident), embed.si(ident)).apply_async()


@app.task(bind=True, base=PipelineTask, name=PROCESS_MEETING, step_name="start")
def process_meeting(self: PipelineTask, meeting_id: str) -> None:
    """Start the pipeline for one meeting (what the backend enqueues after an upload)."""
    _run_step(self, meeting_id, _start)


@app.task(bind=True, base=PipelineTask, name=TRANSCRIBE, step_name="transcription")
def transcribe(self: PipelineTask, meeting_id: str) -> None:
    _run_step(self, meeting_id, transcribe_step.run)


@app.task(bind=True, base=PipelineTask, name=ANALYZE, step_name="analysis")
def analyze(self: PipelineTask, meeting_id: str) -> None:
    _run_step(self, meeting_id, analyze_step.run)


@app.task(bind=True, base=PipelineTask, name=INDEX, step_name="indexing")
def index(self: PipelineTask, meeting_id: str) -> None:
    _run_step(self, meeting_id, index_step.run)


@app.task(bind=True, base=PipelineTask, name=EMBED, step_name="embedding")
def embed(self: PipelineTask, meeting_id: str, replace: bool = False) -> None:
    """Embed a done meeting's chunks (also what `inv search.reindex` enqueues). The meeting is
    done already, so a failure here is logged and never turns it into a failed meeting."""
    # No lease: the meeting is done already, the sweeper never looks at it.
    _run_step(
        self,
        meeting_id,
        lambda res, ident: embed_step.run(res, ident, replace=replace),
        leased=False,
    )


@app.task(name=SWEEP, ignore_result=True)
def sweep() -> None:
    """Queue again the meetings that stalled with no task (see worker/sweeper.py)."""
    try:
        found = sweeper.claim_stuck(resources.get())
    except (RedisError, OperationalError, InterfaceError) as exc:
        logger.warning("sweep skipped, a store is unavailable: %s", exc)
        return
    for meeting_id in found.requeued:
        process_meeting.apply_async((str(meeting_id),))
    if found.requeued or found.failed:
        metrics.meetings_recovered(len(found.requeued), len(found.failed))
