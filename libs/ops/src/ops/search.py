"""`inv search.reindex`: embed existing meetings for search by meaning.

The work is the worker's `meetings.embed` task (the same step a new meeting runs after it is
done), queued by name through the env's Redis like the backend queues uploads: the running
stack's workers do it, in parallel, with their usual retries. Meetings that already have
embeddings are left alone unless `everything` (after a change of embedding model).
"""

from __future__ import annotations

from ops import console
from ops.environment import Environment
from ops.errors import OpsError

MISSING_SQL = """
    SELECT m.id FROM meetings AS m
    WHERE m.status = 'done'
      AND (%(everything)s
           OR NOT EXISTS (SELECT 1 FROM transcript_chunks AS c WHERE c.meeting_id = m.id))
    ORDER BY m.created_at
"""


def reindex(env: Environment, *, everything: bool = False) -> int:
    """Queue an embed task per meeting to (re)embed; the number queued."""
    import psycopg
    from celery import Celery

    from common.database import libpq_url
    from meetings.pipeline import EMBED, TASK_ROUTES

    values = env.values()
    if values.get("SEARCH_EMBEDDINGS", "true").lower() != "true":
        raise OpsError(
            f"SEARCH_EMBEDDINGS=false in {env.env_file.name}: search by meaning is off",
            f"set SEARCH_EMBEDDINGS=true in {env.env_file.name}, restart the stack, then reindex",
        )
    try:
        with psycopg.connect(libpq_url(values["DATABASE_URL"]), connect_timeout=5) as conn:
            ids = [row[0] for row in conn.execute(MISSING_SQL, {"everything": everything})]
    except psycopg.OperationalError as exc:
        raise OpsError(
            f"cannot reach {env}'s database: {str(exc).strip().splitlines()[0]}",
            f"start the stack: `uv run inv up --env {env}`",
        ) from None
    except psycopg.errors.UndefinedTable:
        raise OpsError(
            f"{env}'s database has no transcript_chunks table",
            f"migrate it: `uv run inv db.migrate --env {env}`",
        ) from None
    if not ids:
        console.say(f"every done meeting of {env} has its embeddings; nothing to do")
        return 0
    app = Celery("mi-reindex", broker=values["REDIS_URL"])
    try:
        queue = TASK_ROUTES[EMBED]["queue"]
        for meeting_id in ids:
            app.send_task(
                EMBED, args=[str(meeting_id)], kwargs={"replace": everything}, queue=queue
            )
    finally:
        app.close()
    console.say(
        f"queued {len(ids)} meeting(s) of {env} for embedding; the workers embed them now "
        f"(`inv health --env {env}` shows the {queue} queue draining)"
    )
    return len(ids)
