"""Database URLs: the one place that knows SQLAlchemy's and libpq's spellings of a Postgres URL.

Settings accept either `postgresql://` (what libpq, psql and managed-database consoles print)
or `postgresql+psycopg://` (SQLAlchemy with psycopg 3, the installed driver; a bare
`postgresql://` would make SQLAlchemy look for psycopg2).
"""

from __future__ import annotations

SQLALCHEMY_SCHEME = "postgresql+psycopg://"
LIBPQ_SCHEME = "postgresql://"


def sqlalchemy_url(url: str) -> str:
    """`url` as SQLAlchemy needs it; ValueError for anything but a Postgres URL."""
    if url.startswith(LIBPQ_SCHEME):
        url = SQLALCHEMY_SCHEME + url.removeprefix(LIBPQ_SCHEME)
    if not url.startswith(SQLALCHEMY_SCHEME):
        raise ValueError(f"must be a {SQLALCHEMY_SCHEME} (or {LIBPQ_SCHEME}) URL")
    return url


def libpq_url(url: str) -> str:
    """`url` as libpq (psycopg connections, psql, pg_dump) understands it."""
    if url.startswith(SQLALCHEMY_SCHEME):
        return LIBPQ_SCHEME + url.removeprefix(SQLALCHEMY_SCHEME)
    return url
