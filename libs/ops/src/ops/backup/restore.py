"""`inv backup.restore`: replace an environment's data with a backup's, refusing on any doubt
before touching anything.

First its MAC: an archive this deployment's BACKUP_KEY did not sign is refused (unless the
caller trusts it). Then read the archive once, checking every part's SHA-256 while extracting
(and decrypting) into a staging area; restore the dump into `<db>_restore_<id>` and compare
its row counts and Alembic revision with
the manifest. Only then stop backend and worker, swap the databases by renaming (`<db>`
becomes `<db>_before_<time>`) and the media likewise, migrate forward, restart and
health-check; the old data is dropped only after that succeeded, and put back if anything
failed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ops import console, runtimes
from ops.backup import archive, seal, verify
from ops.backup.archive import Manifest
from ops.backup.lock import exclusive
from ops.backup.pgclient import PgError, PsqlSession, ident, literal
from ops.backup.seal import SealError
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes import StackData

HEALTH_TIMEOUT = 120.0


@dataclass
class Restored:
    path: Path
    manifest: Manifest
    seconds: float
    migrated_to: str | None = None  # the head revision, when the backup was older


def _known_revisions() -> tuple[list[str], str]:
    from meetings import migrations

    return [rev for rev, _ in migrations.history()], migrations.head()


def check_restorable(manifest: Manifest, env: Environment, from_env: str | None) -> None:
    """Refuse another env's backup (unless named) and one from code newer than ours."""
    if manifest.env != env.name and from_env != manifest.env:
        raise OpsError(
            f"this is a backup of {manifest.env}, not of {env}",
            f"to restore {manifest.env}'s data into {env} on purpose, add "
            f"--from-env {manifest.env}",
        )
    known, head = _known_revisions()
    if manifest.alembic_revision is not None and manifest.alembic_revision not in known:
        commit = f" (commit {manifest.git_commit[:12]})" if manifest.git_commit else ""
        raise OpsError(
            f"the backup is at Alembic revision {manifest.alembic_revision}, which this code "
            f"does not know (its head is {head}): it was made by newer code{commit}",
            "restore it with the code that made it (or newer), never by downgrading the data",
        )


def restore(
    env: Environment,
    path: Path | str,
    *,
    yes: bool = False,
    from_env: str | None = None,
    trust: bool = False,
    timeout: float = HEALTH_TIMEOUT,
) -> Restored:
    """Replace `env`'s database and media with a backup's, refusing on any doubt first: an
    archive this deployment did not sign is refused unless `trust`."""
    from ops import console

    archive_path = verify.resolve(path)
    try:
        head = archive.read_head(archive_path)
    except archive.ArchiveError as exc:
        raise OpsError(
            f"refusing to restore: {exc}",
            f"nothing was changed; pick another backup (`inv backup.list --env {env}`)",
        ) from None
    manifest = head.manifest
    # Another env's backup, restored here on purpose, is checked with that env's key.
    owner = Environment.parse(from_env) if from_env and manifest.env == from_env else env
    check_restorable(manifest, env, from_env)
    key = verify.deployment_key(owner, trust=trust)
    try:
        head.authenticate(key, trust=trust)
    except SealError as exc:
        raise OpsError(
            f"refusing to restore {archive_path.name}, {owner} did not make it: {exc}",
            f"nothing was changed; pick another backup (`inv backup.list --env {env}`)",
        ) from None
    if trust and not _signed_by(head, key):
        console.say(
            f"warning: {archive_path.name} is not signed by {owner}'s {seal.KEY_NAME}; "
            f"restoring it because of {seal.TRUST_FLAG}"
        )
    target = runtimes.running(env).data()
    console.confirm(
        f"replace {env}'s database {target.database!r} and its media with the backup of "
        f"{manifest.env} from {manifest.created_at} ({len(manifest.media_parts)} media files)?",
        yes,
    )
    started = time.monotonic()
    with exclusive(env) as directory:
        work = Path(tempfile.mkdtemp(prefix=".work-", dir=directory))
        media_dir = target.media.restore_dir(work)
        incoming = verify.scratch_name(target.database, "restore")
        try:
            media_bytes = sum(p.size for p in manifest.media_parts)
            _require_space(work, manifest.size - media_bytes)
            _require_space(media_dir, media_bytes)
            result = archive.scan(
                archive_path,
                key=key,
                trust=trust,
                dump_to=work / archive.DUMP,
                media_to=media_dir,
            )
            verify.record(archive_path, result.ok, False, result.problems)
            if not result.ok:
                raise OpsError(
                    "refusing to restore, the archive is not intact: " + "; ".join(result.problems),
                    f"nothing was changed; restore another backup (`inv backup.list --env {env}`)",
                )
            console.say(f"verified and unpacked {archive_path.name} in {console.elapsed(started)}")
            try:
                verify.restore_into(target, incoming, work / archive.DUMP)
            except PgError as exc:
                raise OpsError(
                    f"refusing to restore, the dump does not load: {exc.problem}",
                    exc.fix or "nothing was changed; `inv backup.verify --drill` shows the same",
                ) from None
            problems = verify.compare_with_manifest(target, incoming, manifest)
            if problems:
                raise OpsError(
                    "refusing to restore, the restored copy differs from the manifest: "
                    + "; ".join(problems),
                    "nothing was changed; run `inv backup.verify --drill` on the archive",
                )
            took = console.elapsed(started)
            console.say(f"restored the dump into {incoming} and checked it ({took})")
            # The unpacked media must be on disk before the old copy can be deleted; syncing
            # here, while the old stack still serves, keeps it out of the downtime.
            os.sync()
            migrated_to = _swap(env, target, incoming, media_dir, manifest, timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                verify.drop(target, incoming)
            raise
        finally:
            shutil.rmtree(media_dir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    console.say(f"restored {env} from {archive_path.name} in {seconds:.1f}s")
    return Restored(archive_path, manifest, seconds, migrated_to)


def _signed_by(head: archive.Head, key: seal.BackupKey | None) -> bool:
    try:
        head.authenticate(key, trust=False)
    except SealError:
        return False
    return True


def _require_space(directory: Path, needed: int) -> None:
    """Unpacking must not fill the disk the live data is on; 10% and 64 MiB to spare."""
    free = shutil.disk_usage(directory).free
    if needed * 1.1 + 64 * 1024 * 1024 > free:
        raise OpsError(
            f"not enough space to unpack the backup in {directory}: it needs "
            f"{console.size(needed)}, {console.size(free)} is free",
            "free some disk space (old backups: `inv backup --keep N`), nothing was changed",
        )


def _terminate(admin: PsqlSession, database: str, timeout: float = 30) -> None:
    """Refuse new connections to `database`, end the open ones, wait until none is left."""
    # The restore runs as the owner role, which may end any session but a superuser's.
    superusers = admin.value(
        "SELECT string_agg(DISTINCT a.usename, ', ') FROM pg_stat_activity a"  # noqa: S608 - quoted
        f" JOIN pg_roles r ON r.rolname = a.usename WHERE a.datname = {literal(database)}"
        " AND a.pid <> pg_backend_pid() AND r.rolsuper"
    )
    if superusers:
        raise OpsError(
            f"a superuser ({superusers}) is connected to {database}, and the owner role the "
            "restore runs as may not end a superuser's session",
            "close that session (psql, a database GUI), then retry",
        )
    admin.execute(f"ALTER DATABASE {ident(database)} WITH ALLOW_CONNECTIONS false")
    deadline = time.monotonic() + timeout
    while True:
        left = admin.value(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "  # noqa: S608 - quoted
            f"WHERE datname = {literal(database)} AND pid <> pg_backend_pid()"
        )
        if left == "0":
            return
        if time.monotonic() > deadline:
            raise OpsError(f"{left} session(s) on {database} did not end within {timeout:g}s")
        time.sleep(0.1)


def _exists(admin: PsqlSession, database: str) -> bool:
    found = admin.value(f"SELECT 1 FROM pg_database WHERE datname = {literal(database)}")  # noqa: S608
    return found == "1"


def _swap(
    env: Environment,
    target: StackData,
    incoming: str,
    media_dir: Path,
    manifest: Manifest,
    timeout: float,
) -> str | None:
    """Stop the apps, rename databases and media into place, migrate, restart; undo on error."""
    live = target.database
    stamp = archive.utc_now().strftime("%Y%m%d%H%M%S")
    suffix = f"_before_{stamp}"
    previous = live[: verify.PG_IDENTIFIER_MAX - len(suffix)] + suffix
    migrated_to = None
    started = time.monotonic()
    if target.runtime == "direct":
        console.say(target.apps.description)
    stopped = target.apps.stop()
    if stopped:
        console.say(f"stopped {', '.join(stopped)} ({console.elapsed(started)})")
    moved_old = moved_new = False
    media_token: object | None = None
    try:
        with PsqlSession(target.endpoint, "postgres") as admin:
            if _exists(admin, live):
                _terminate(admin, live)
                admin.execute(f"ALTER DATABASE {ident(live)} RENAME TO {ident(previous)}")
                moved_old = True
            admin.execute(f"ALTER DATABASE {ident(incoming)} RENAME TO {ident(live)}")
            moved_new = True
        media_token = target.media.swap_in(media_dir)
        _, head = _known_revisions()
        if manifest.alembic_revision != head:
            target.apps.migrate()
            migrated_to = head
            console.say(
                f"migrated the restored database from "
                f"{manifest.alembic_revision or 'an empty schema'} to {head}"
            )
        swapped = time.monotonic()
        target.apps.start(stopped, timeout)
    except BaseException as exc:
        console.say(f"restore failed ({exc}); putting the previous data back")
        _undo(target, stopped, live, previous, moved_old, moved_new, media_token, timeout)
        if isinstance(exc, OpsError):
            raise OpsError(
                f"restore failed and was rolled back: {exc.problem}",
                f"the {env} stack runs on its previous data; fix the cause and retry",
            ) from exc
        raise
    with PsqlSession(target.endpoint, "postgres") as admin:
        if moved_old:
            admin.execute(f"DROP DATABASE IF EXISTS {ident(previous)} WITH (FORCE)")
    if media_token is not None:
        target.media.finish(media_token)
    if stopped:
        console.say(f"started {', '.join(stopped)} again: healthy ({console.elapsed(swapped)})")
    return migrated_to


def _undo(
    target: StackData,
    stopped: list[str],
    live: str,
    previous: str,
    moved_old: bool,
    moved_new: bool,
    media_token: object | None,
    timeout: float,
) -> None:
    with contextlib.suppress(Exception):
        target.apps.stop()
    failed = verify.scratch_name(live, "failed")
    with PsqlSession(target.endpoint, "postgres") as admin:
        if moved_new:
            _terminate(admin, live)
            admin.execute(f"ALTER DATABASE {ident(live)} RENAME TO {ident(failed)}")
            admin.execute(f"DROP DATABASE {ident(failed)} WITH (FORCE)")
        if moved_old:
            admin.execute(f"ALTER DATABASE {ident(previous)} RENAME TO {ident(live)}")
            admin.execute(f"ALTER DATABASE {ident(live)} WITH ALLOW_CONNECTIONS true")
        elif _exists(admin, live):
            admin.execute(f"ALTER DATABASE {ident(live)} WITH ALLOW_CONNECTIONS true")
    if media_token is not None:
        target.media.rollback(media_token)
    if stopped:
        target.apps.start(stopped, timeout)
