"""Alembic environment: runs against `config.attributes["database_url"]` or $DATABASE_URL.

Programmatic callers (`meetings.migrations`) pass the URL as an attribute, which avoids
configparser's `%` interpolation mangling passwords; humans running `alembic` from
libs/meetings get $DATABASE_URL.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from common.database import sqlalchemy_url
from meetings.models import Base

# Any constant works; it only has to be the same for every process migrating this database.
MIGRATION_LOCK_ID = 7_361_042_118

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set: export it or run through `inv db.migrate`.")
    return sqlalchemy_url(str(url))


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) for review by a DBA."""
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            # Replicas starting together must not migrate concurrently: the second one waits
            # here, then sees the new version and has nothing left to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
