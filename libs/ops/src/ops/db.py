"""`inv db.*`: the Alembic migrations of `meetings` (libs/meetings), per environment.

The migration scripts ship inside the `meetings` package (`meetings.migrations`); this module
adds what an operator needs around them: which database, is it reachable, a safety backup
before changing staging or prod, and errors that say what to do. They connect as the owner
role (DATABASE_OWNER_URL): the services' app role may not change the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ops import console
from ops.environment import Environment
from ops.errors import OpsError

T = TypeVar("T")


@contextmanager
def _database_errors(env: Environment) -> Iterator[None]:
    """Turn driver errors into what the operator should do about them."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise OpsError(
            f"the {env} database does not answer: {reason}",
            f"start the stack (`inv up --env {env}`) or check DATABASE_OWNER_URL in .env.{env}",
        ) from None


def _run(env: Environment, action: Callable[[], T]) -> T:
    with _database_errors(env):
        return action()


def upgrade_to_head(database_url: str, what: str, fix: str = "") -> None:
    """Migrate `database_url` to head, or say that `what` failed (and `fix`)."""
    from meetings import migrations

    try:
        migrations.upgrade(database_url)
    except Exception as exc:
        raise OpsError(f"{what} failed: {type(exc).__name__}: {exc}", fix) from exc


def safety_backup(env: Environment, *, skip: bool) -> Callable[[Environment], Path] | None:
    """What to run before a staging/prod schema change: a verified backup (None in dev)."""
    if skip or not env.protected:
        return None
    from ops import backup

    return backup.safety_backup  # creates, reads back every checksum, returns the path


def status(env: Environment) -> tuple[str | None, str]:
    """(the database's revision, the code's head revision)."""
    from meetings import migrations

    url = env.required(env.values(), "DATABASE_OWNER_URL")
    return _run(env, lambda: migrations.current(url)), migrations.head()


def migrate(
    env: Environment, to: str = "head", *, backup: Callable[[Environment], Path] | None = None
) -> str:
    """Upgrade `env` to `to`; `backup(env)` runs first when given. Returns the new revision."""
    from meetings import migrations

    url = env.required(env.values(), "DATABASE_OWNER_URL")
    before, head = status(env)
    target = head if to == "head" else to
    if before == target:
        return f"already at {target}; nothing to do"
    if backup is not None:
        console.say(f"safety backup: {backup(env)}")
    _run(env, lambda: migrations.upgrade(url, to))
    after = _run(env, lambda: migrations.current(url))
    return f"migrated {env} from {before or 'an empty database'} to {after}"


def downgrade(
    env: Environment, to: str, *, backup: Callable[[Environment], Path] | None = None
) -> str:
    from meetings import migrations

    url = env.required(env.values(), "DATABASE_OWNER_URL")
    before, _ = status(env)
    if backup is not None:
        console.say(f"safety backup: {backup(env)}")
    try:
        _run(env, lambda: migrations.downgrade(url, to))
    except Exception as exc:
        if isinstance(exc, OpsError):
            raise
        raise OpsError(
            f"downgrade of {env} to {to!r} failed: {exc}",
            "`inv db.current` shows where the database is; revisions are listed in "
            "libs/meetings/src/meetings/migrations/versions",
        ) from exc
    after = _run(env, lambda: migrations.current(url))
    return f"downgraded {env} from {before} to {after or 'base (empty schema)'}"


def _require_head(env: Environment, why: str) -> str:
    """The head revision, once `env`'s database is at it; else what to run first, and why."""
    current, head = status(env)
    if current != head:
        raise OpsError(
            f"the {env} database is at {current or 'no revision'}, not at head {head}",
            f"`inv db.migrate --env {env}` first, {why}",
        )
    return head


def check(env: Environment) -> str:
    """Fail when the models need a migration that does not exist yet."""
    from meetings import migrations

    url = env.required(env.values(), "DATABASE_OWNER_URL")
    head = _require_head(env, "since models are compared with a migrated database")
    try:
        _run(env, lambda: migrations.check(url))
    except migrations.SchemaDriftError as exc:
        raise OpsError(
            str(exc), "`inv db.revision -m 'what changed'`, review it, commit it"
        ) from None
    return f"models and migrations agree (head {head})"


def revision(env: Environment, message: str) -> Path:
    """Autogenerate a migration from the difference between the models and `env`'s database."""
    from meetings import migrations

    url = env.required(env.values(), "DATABASE_OWNER_URL")
    _require_head(env, "so only your model changes end up in the script")
    try:
        return _run(env, lambda: migrations.revision(url, message))
    except ValueError as exc:
        raise OpsError(str(exc), "pass -m 'what changed'", code=2) from None
