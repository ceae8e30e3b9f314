"""What the Celery broker (kombu's Redis transport) holds: which meetings have a task message.

kombu keeps one Redis list per queue and priority step for waiting messages, and one hash,
`unacked`, for messages a worker took and has not acknowledged yet (running, or held until a
retry's countdown ends; late acks keep them there until the task finished). A meeting with a
message in any of them is on its way; one with none, while its status says in progress, was
lost (a crash between the upload's commit and its enqueue, Redis data lost, a restore).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Iterator

from redis import Redis

from meetings.pipeline import ALL_QUEUES, ANALYZE, INDEX, PROCESS_MEETING, TRANSCRIBE

logger = logging.getLogger(__name__)

PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
UNACKED_KEY = "unacked"
# Tasks that move a meeting towards done (embed runs after it is done).
MEETING_TASKS = frozenset({PROCESS_MEETING, TRANSCRIBE, ANALYZE, INDEX})


def queue_keys(queue: str) -> tuple[str, ...]:
    """The Redis lists of one Celery queue: priority 0, then each priority step."""
    return (queue, *(f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS))


def meeting_of(raw: bytes | str) -> str | None:
    """The meeting id a pipeline task message is for; None for other tasks or unreadable ones."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # the unacked hash stores [message, exchange, key]
            message = message[0]
        if message.get("headers", {}).get("task") not in MEETING_TASKS:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _ = json.loads(body)
        meeting = args[0] if args else kwargs.get("meeting_id")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        logger.debug("skipping an unreadable broker message: %s", exc)
        return None
    return str(meeting) if meeting is not None else None


def _ids(messages: Iterable[bytes | str]) -> Iterator[str]:
    for raw in messages:
        meeting = meeting_of(raw)
        if meeting is not None:
            yield meeting


def meetings_with_messages(redis: Redis) -> set[str]:
    """Ids of the meetings with a pipeline message waiting, running or scheduled to retry."""
    pipe = redis.pipeline(transaction=True)  # one snapshot: a message moving between two reads
    for queue in ALL_QUEUES:
        for key in queue_keys(queue):
            pipe.lrange(key, 0, -1)
    pipe.hvals(UNACKED_KEY)
    found: set[str] = set()
    for messages in pipe.execute():
        found.update(_ids(messages))
    return found
