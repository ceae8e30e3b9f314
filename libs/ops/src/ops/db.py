"""`inv db.*`: the backend's Alembic migrations, per environment.

The migration scripts ship inside the backend package (`meetings.migrations`); this module
adds what an operator needs around them: which database, is it reachable, a safety backup
before changing staging or prod, and errors that say what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ops import envfile, environments
from ops.errors import OpsError

T = TypeVar("T")
PROTECTED_ENVS = ("staging", "prod")


def database_url(env: str) -> str:
    environments.validate(env)
    return envfile.load(env)["DATABASE_URL"]


@contextmanager
def _database_errors(env: str) -> Iterator[None]:
    """Turn driver errors into what the operator should do about them."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise OpsError(
            f"the {env} database does not answer: {reason}",
            f"start the stack (`inv up --env {env}`) or check DATABASE_URL in .env.{env}",
        ) from None


def _run(env: str, action: Callable[[], T]) -> T:
    with _database_errors(env):
        return action()


def safety_backup(env: str, *, skip: bool) -> Callable[[str], Path] | None:
    """What to run before a staging/prod schema change: a verified backup (None in dev)."""
    if skip or env not in PROTECTED_ENVS:
        return None
    from ops import backup

    return backup.safety_backup  # creates, reads back every checksum, returns the path


def status(env: str) -> tuple[str | None, str]:
    """(the database's revision, the code's head revision)."""
    from meetings import migrations

    url = database_url(env)
    return _run(env, lambda: migrations.current(url)), migrations.head()


def migrate(env: str, to: str = "head", *, backup: Callable[[str], Path] | None = None) -> str:
    """Upgrade `env` to `to`; `backup(env)` runs first when given. Returns the new revision."""
    from meetings import migrations

    url = database_url(env)
    before, head = status(env)
    target = head if to == "head" else to
    if before == target:
        return f"already at {target}; nothing to do"
    if backup is not None:
        path = backup(env)
        print(f"safety backup: {path}")  # noqa: T201
    _run(env, lambda: migrations.upgrade(url, to))
    after = _run(env, lambda: migrations.current(url))
    return f"migrated {env} from {before or 'an empty database'} to {after}"


def downgrade(env: str, to: str, *, backup: Callable[[str], Path] | None = None) -> str:
    from meetings import migrations

    url = database_url(env)
    before, _ = status(env)
    if backup is not None:
        path = backup(env)
        print(f"safety backup: {path}")  # noqa: T201
    try:
        _run(env, lambda: migrations.downgrade(url, to))
    except Exception as exc:
        if isinstance(exc, OpsError):
            raise
        raise OpsError(
            f"downgrade of {env} to {to!r} failed: {exc}",
            "`inv db.current` shows where the database is; revisions are listed in "
            "services/backend/src/backend/migrations/versions",
        ) from exc
    after = _run(env, lambda: migrations.current(url))
    return f"downgraded {env} from {before} to {after or 'base (empty schema)'}"


def _require_head(env: str, why: str) -> str:
    """The head revision, once `env`'s database is at it; else what to run first, and why."""
    current, head = status(env)
    if current != head:
        raise OpsError(
            f"the {env} database is at {current or 'no revision'}, not at head {head}",
            f"`inv db.migrate --env {env}` first, {why}",
        )
    return head


def check(env: str) -> str:
    """Fail when the models need a migration that does not exist yet."""
    from meetings import migrations

    url = database_url(env)
    head = _require_head(env, "since models are compared with a migrated database")
    try:
        _run(env, lambda: migrations.check(url))
    except migrations.SchemaDriftError as exc:
        raise OpsError(
            str(exc), "`inv db.revision -m 'what changed'`, review it, commit it"
        ) from None
    return f"models and migrations agree (head {head})"


def revision(env: str, message: str) -> Path:
    """Autogenerate a migration from the difference between the models and `env`'s database."""
    from meetings import migrations

    url = database_url(env)
    _require_head(env, "so only your model changes end up in the script")
    try:
        return _run(env, lambda: migrations.revision(url, message))
    except ValueError as exc:
        raise OpsError(str(exc), "pass -m 'what changed'", code=2) from None
