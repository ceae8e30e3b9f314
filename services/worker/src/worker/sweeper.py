"""Finds meetings whose pipeline stopped without finishing, and queues them again.

A meeting can be left in progress with nothing left to move it: the backend crashed between
committing the upload and enqueueing it, Redis lost its data, a database restore brought
back meetings that were mid-pipeline, or a step's message was dropped. Steps are idempotent
and statuses only move forward, so starting the pipeline again (`meetings.process`) finishes
such a meeting without redoing what is stored.

Why a sweeper run by the workers, rather than Celery beat or an outbox table:

- Every worker arms a timer (a bootstep, see `SweepTimer`); at each tick one of them wins a
  short Redis lock and sends `meetings.sweep`. No extra process to deploy in three runtimes,
  no singleton beat whose loss would silently stop recovery, no schedule file on a read-only
  root filesystem. When no worker runs, nothing could be processed anyway.
- An outbox would cover the upload's commit-to-enqueue gap only; the restore and Redis-loss
  cases need a sweep over the meetings table regardless, and the sweep covers the gap too.

What is never touched, so a meeting legitimately in flight is never run twice:

- a meeting with a task message in Redis (waiting in a queue however long the backlog,
  running, or held for a retry's countdown: see `worker.broker`);
- a meeting whose step holds a lease (`lease_until`, set by each step when it starts to the
  hard time limit, which no step outlives), for when Redis lost the message of a step that
  is still running;
- a meeting touched within WORKER_SWEEP_STALE_AFTER (a step just started or ended, an upload
  whose enqueue is under way).

Bounded like redeliveries: each recovery is counted on the meeting (`recoveries`); one found
stuck again after WORKER_MAX_DELIVERIES recoveries is failed with the reason instead of
being queued forever (`POST /api/v1/meetings/{id}/retry` starts it again on purpose).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import bootsteps
from kombu.exceptions import OperationalError as BrokerError
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select, update

from meetings.models import Meeting, MeetingStatus
from worker import broker, store
from worker.config import get_settings
from worker.resources import Resources

logger = logging.getLogger(__name__)

IN_PROGRESS = (
    MeetingStatus.QUEUED.value,
    MeetingStatus.TRANSCRIBING.value,
    MeetingStatus.ANALYZING.value,
)
BATCH = 200
"""Meetings looked at per sweep; more wait for the next one (oldest first)."""
LOCK_KEY = "mi:sweeper"


@dataclass
class Sweep:
    requeued: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)


def claim_stuck(res: Resources) -> Sweep:
    """Find the stuck meetings; count a recovery on each (or fail those out of recoveries).

    The caller queues `requeued` after this commits. Concurrent sweeps do not both claim a
    meeting: rows are locked (others skipped) and a claim touches `updated_at`.
    """
    settings = res.settings
    # Redis first: a message published after this read belongs to a meeting touched just now
    # (a step starting or ending), which the age condition below leaves alone.
    on_the_way = broker.meetings_with_messages(res.redis)
    stale = func.now() - timedelta(seconds=settings.worker_sweep_stale_after)
    sweep = Sweep()
    with res.sessions() as session, session.begin():
        rows = session.execute(
            select(Meeting.id, Meeting.status, Meeting.recoveries)
            .where(
                Meeting.status.in_(IN_PROGRESS),
                Meeting.updated_at < stale,
                or_(Meeting.lease_until.is_(None), Meeting.lease_until < func.now()),
            )
            .order_by(Meeting.updated_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            if str(row.id) in on_the_way:
                continue
            if row.recoveries >= settings.worker_max_deliveries:
                store.mark_failed(
                    session,
                    row.id,
                    f"{row.status}: stalled again after being queued again {row.recoveries} "
                    "times (its task was lost or its step interrupted each time, "
                    "WORKER_MAX_DELIVERIES); see the worker logs, then retry it with "
                    f"POST /api/v1/meetings/{row.id}/retry",
                )
                sweep.failed.append(row.id)
                continue
            session.execute(
                update(Meeting)
                .where(Meeting.id == row.id)
                .values(recoveries=Meeting.recoveries + 1, updated_at=func.now())
            )
            sweep.requeued.append(row.id)
            logger.warning(
                "meeting %s: %s with no task and no running step for over %gs; queued again "
                "(recovery %d of at most %d)",
                row.id,
                row.status,
                settings.worker_sweep_stale_after,
                row.recoveries + 1,
                settings.worker_max_deliveries,
            )
    for meeting_id in sweep.failed:
        logger.warning("meeting %s: failed, it kept stalling", meeting_id)
    return sweep


class SweepTimer(bootsteps.StartStopStep):
    """Every worker's timer: each WORKER_SWEEP_INTERVAL, whoever takes the Redis lock first
    sends one `meetings.sweep` (to the pipeline queue, run by a pool process)."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.redis: Redis | None = None

    def start(self, worker: Any) -> None:
        interval = get_settings().worker_sweep_interval
        self.tref = worker.timer.call_repeatedly(interval, self.tick, (interval,))

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.redis is not None:
            self.redis.close()

    def tick(self, interval: float) -> None:
        # Runs in the worker's event loop: short timeouts, and never raise.
        from worker.tasks import sweep

        try:
            if self.redis is None:
                self.redis = Redis.from_url(
                    get_settings().redis_url, socket_timeout=2, socket_connect_timeout=2
                )
            # Just under one interval: one sweep per interval across all workers.
            if not self.redis.set(LOCK_KEY, "1", nx=True, px=int(interval * 900)):
                return
            # A sweep nobody ran within its interval is replaced by the next one.
            sweep.apply_async(expires=interval, retry=False)
        except (RedisError, BrokerError, OSError) as exc:
            logger.warning("sweep not scheduled (Redis unavailable): %s", exc)
        except Exception:
            logger.exception("sweep not scheduled")
