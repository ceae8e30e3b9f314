"""A psycopg connection pool for the API's hot read paths (meeting detail, search).

The ORM is the right tool for writes, but on a read that is one SELECT its per-request
cost (session, pool events, greenlet hops, BEGIN/ROLLBACK) is larger than the query's.
These connections are in autocommit mode and run hand-written SQL directly.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from common.database import libpq_url


def read_pool(url: str, *, min_size: int, max_size: int) -> AsyncConnectionPool:
    """An unopened pool; `await pool.open()` in the app's lifespan."""
    return AsyncConnectionPool(
        libpq_url(url),
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        connection_class=AsyncConnection,
        open=False,
        name="read",
        # A request waits at most this long for a connection, then gets a 503 instead of
        # hanging while the database is down.
        timeout=5.0,
    )
