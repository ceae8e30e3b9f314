"""Count how often one task message was delivered, to stop redelivery loops.

A message whose worker dies (SIGKILL, OOM, segfault in a decoder) is delivered again; if
the task itself kills the worker, that would repeat forever. The count is keyed by task id
and retry number, because a Celery retry is a new message with the same task id.
"""

from __future__ import annotations

from redis import Redis

KEY_TTL_S = 7 * 24 * 3600


def count_delivery(redis: Redis, task_id: str, retries: int) -> int:
    """Record one more delivery of this message and return how many there have been."""
    key = f"mi:deliveries:{task_id}:{retries}"
    with redis.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, KEY_TTL_S)
        count, _ = pipe.execute()
    return int(count)
