"""The sweeper's choice, in-process against real Postgres and Redis: which meetings it queues
again, which it leaves alone (on their way, held by a running step, just touched, finished),
and when it gives up on one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from kombu import Connection
from sqlalchemy import text

from backend.services.task_queue import enqueue_meeting, make_client
from meetings.models import Meeting
from meetings.pipeline import QUEUE_PIPELINE
from worker import broker, resources, sweeper
from worker.config import WorkerSettings

STALE_AFTER = 60


@pytest.fixture
def res(worker_env: dict[str, str]) -> Iterator[resources.Resources]:
    settings = WorkerSettings(
        **{k.lower(): v for k, v in worker_env.items()},
        worker_sweep_stale_after=STALE_AFTER,
        worker_max_deliveries=2,
    )
    built = resources.build(settings)
    yield built
    built.close()


@pytest.fixture
def meeting(res: resources.Resources) -> Callable[..., uuid.UUID]:
    """A meeting row with `status`, last touched `idle` seconds ago."""

    def create(status: str = "queued", idle: float = 600, **values: object) -> uuid.UUID:
        meeting_id = uuid.uuid4()
        with res.sessions() as session, session.begin():
            session.add(
                Meeting(
                    id=meeting_id,
                    title="Planning",
                    status=status,
                    media_filename=f"{meeting_id.hex}.wav",
                    content_type="audio/wav",
                    size_bytes=1,
                    **values,
                )
            )
            session.flush()
            session.execute(
                text(
                    "UPDATE meetings SET updated_at = now() - make_interval(secs => :s) "
                    "WHERE id = :id"
                ),
                {"s": idle, "id": meeting_id},
            )
        return meeting_id

    return create


def field(res: resources.Resources, meeting_id: uuid.UUID, name: str) -> object:
    with res.sessions() as session:
        return session.execute(
            text(f"SELECT {name} FROM meetings WHERE id = :id"),  # noqa: S608 - a test's column
            {"id": meeting_id},
        ).scalar_one()


def test_a_meeting_with_no_task_is_claimed_once(
    res: resources.Resources, meeting: Callable[..., uuid.UUID]
) -> None:
    lost = [meeting("queued"), meeting("transcribing"), meeting("analyzing")]

    first = sweeper.claim_stuck(res)
    assert sorted(first.requeued) == sorted(lost)
    assert first.failed == []
    assert [field(res, m, "recoveries") for m in lost] == [1, 1, 1]
    # Claiming touched them: the next sweep (another worker's, say) leaves them to the first.
    assert sweeper.claim_stuck(res).requeued == []


def test_meetings_on_their_way_or_finished_are_left_alone(
    res: resources.Resources, meeting: Callable[..., uuid.UUID], redis_url: str
) -> None:
    waiting = meeting("queued")  # behind a backlog: its message waits in the queue
    client = make_client(redis_url, timeout_s=5)
    enqueue_meeting(client, waiting)
    taken = meeting("transcribing")  # a worker took its message and has not acknowledged it
    enqueue_meeting(client, taken)
    leased = meeting("analyzing", lease_until=text("now() + interval '10 minutes'"))
    touched = meeting("queued", idle=5)  # an upload whose enqueue is under way
    finished = [meeting("done"), meeting("failed")]
    lost = meeting("transcribing", lease_until=text("now() - interval '1 minute'"))

    with Connection(redis_url) as conn:
        queue = conn.SimpleQueue(QUEUE_PIPELINE)
        held = [queue.get(timeout=5), queue.get(timeout=5)]  # both, in the order sent
        held[0].requeue()  # `waiting` goes back to the list: waiting, not taken
        assert broker.meetings_with_messages(res.redis) == {str(waiting), str(taken)}
        assert res.redis.hlen(broker.UNACKED_KEY) == 1

        swept = sweeper.claim_stuck(res)
        queue.close()

    assert swept.requeued == [lost]
    for untouched in (waiting, taken, leased, touched, *finished):
        assert field(res, untouched, "recoveries") == 0
    assert field(res, leased, "status") == "analyzing"


def test_a_meeting_that_keeps_stalling_is_failed_with_the_reason(
    res: resources.Resources, meeting: Callable[..., uuid.UUID]
) -> None:
    tired = meeting("transcribing", recoveries=2)  # WORKER_MAX_DELIVERIES=2 here
    fresh = meeting("transcribing", recoveries=1)

    swept = sweeper.claim_stuck(res)

    assert swept.requeued == [fresh]
    assert swept.failed == [tired]
    assert field(res, tired, "status") == "failed"
    error = str(field(res, tired, "error"))
    assert error.startswith("transcribing: stalled again after being queued again 2 times")
    assert f"POST /api/v1/meetings/{tired}/retry" in error
    assert field(res, tired, "completed_at") is not None
