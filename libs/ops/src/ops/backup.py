"""`inv backup.*`: backups that restore to exactly what they captured, and restores that
refuse before they touch anything unless the archive is proven intact.

A consistent backup while the stack serves writes:

- Uploads write their file before their row commits; deletes commit first and unlink after.
  So every row in a database snapshot has its file on disk at the snapshot's moment, and the
  only way to lose one is a delete that commits after the snapshot and unlinks the file
  before it is copied.
- One transaction (REPEATABLE READ) therefore takes a `FOR KEY SHARE` lock on every meeting
  row it sees, exports its snapshot for pg_dump and counts rows in the same snapshot. The
  lock blocks deletes of those rows (an API DELETE waits, it does not fail) but not the
  worker's status updates nor new uploads. Inside the lock the media files are hard-linked
  aside (milliseconds; a copy across filesystems and in compose), then the lock is released
  and the archive is written from the links. Only files referenced by dumped rows are
  archived; uploads still in flight and orphans are not.

Restore: read the archive once, checking every part's SHA-256 while extracting into a
staging area; restore the dump into `<db>_restore` and compare its row counts and Alembic
revision with the manifest. Only then stop backend and worker, swap the databases by renaming
(`<db>` becomes `<db>_before_<time>`) and the media directories likewise, migrate forward,
restart and health-check; the old data is dropped only after that succeeded, and put back
if anything failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ops import archive, environments, project
from ops.archive import ArchiveWriter, Manifest
from ops.backup_targets import NoApps, Target, for_env
from ops.errors import OpsError
from ops.pgclient import (
    PgError,
    PsqlSession,
    alembic_revision,
    ident,
    literal,
    run_tool,
    table_counts,
)

# The backend's schema: recordings are files in MEDIA_DIR named by meetings.media_filename.
MEDIA_TABLE = "public.meetings"
MEDIA_COLUMN = "media_filename"
SNAPSHOT_ATTEMPTS = 5
ROW_LOCK_TIMEOUT = "60s"  # waiting on an in-flight DELETE; longer means something is stuck
RESTORE_JOBS = 2
HEALTH_TIMEOUT = 120.0
PG_IDENTIFIER_MAX = 63

say: Callable[[str], None] = print


def backups_dir(env: str) -> Path:
    return project.root() / "backups" / environments.validate(env)


def _elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.1f}s"


def _size(num: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(num) < 1024 or unit == "GiB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num:.1f} TiB"  # pragma: no cover


@contextlib.contextmanager
def _exclusive(env: str) -> Iterator[Path]:
    """One backup or restore per environment at a time; leftovers of a crash are removed."""
    directory = backups_dir(env)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (directory / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OpsError(
                f"another backup or restore of {env} is running",
                "wait for it to finish, then run this again",
            ) from None
        for stale in directory.glob(f".*{archive.PARTIAL_SUFFIX}"):
            stale.unlink(missing_ok=True)  # a crashed run's unfinished archive
        for stale in directory.glob(".work-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            yield directory
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- create -------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What one REPEATABLE READ transaction saw; pg_dump imports the same snapshot."""

    session: PsqlSession
    name: str
    media: list[str]
    revision: str | None
    row_counts: dict[str, int]
    postgres_version: str


def _open_snapshot(target: Target) -> Snapshot:
    """Begin the backup transaction, lock the meeting rows against deletion, export the
    snapshot. A row deleted between the snapshot and its lock makes Postgres refuse the lock
    (serialization failure): that attempt is rolled back and repeated."""
    for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
        session = PsqlSession(target.endpoint, target.database)
        try:
            session.execute(
                "BEGIN ISOLATION LEVEL REPEATABLE READ; "
                f"SET LOCAL lock_timeout = {literal(ROW_LOCK_TIMEOUT)}"
            )
            media: list[str] = []
            if session.value(f"SELECT to_regclass({literal(MEDIA_TABLE)}) IS NOT NULL") == "t":
                media = session.json(
                    f"SELECT coalesce(jsonb_agg({MEDIA_COLUMN}), '[]') FROM "  # noqa: S608 - constants
                    f"(SELECT {MEDIA_COLUMN} FROM {MEDIA_TABLE} FOR KEY SHARE) AS locked"
                )
            name = session.value("SELECT pg_export_snapshot()") or ""
            return Snapshot(
                session=session,
                name=name,
                media=[m for m in media if m],
                revision=alembic_revision(session),
                row_counts=table_counts(session),
                postgres_version=session.value("SHOW server_version") or "",
            )
        except PgError as exc:
            session.close()
            if "could not serialize" in exc.detail and attempt < SNAPSHOT_ATTEMPTS:
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _git() -> tuple[str | None, bool | None]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project.root(),
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project.root(),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head, bool(dirty)


def _app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mi-backend")
    except PackageNotFoundError:
        return ""


@dataclass
class Created:
    path: Path
    manifest: Manifest
    seconds: float
    deleted: list[Path] = field(default_factory=list)


def create(
    env: str,
    *,
    keep: int = 0,
    verify_after: bool = True,
    after_snapshot: Callable[[], None] | None = None,
) -> Created:
    """Back up `env`'s database and media into one archive under backups/<env>/.

    `after_snapshot` runs while the rows are locked, before pg_dump: tests use it to race a
    delete against the backup.
    """
    if keep < 0:
        raise OpsError(f"--keep {keep}: give the number of backups to keep (0 keeps all)", code=2)
    target = for_env(env)
    started = time.monotonic()
    with _exclusive(env) as directory:
        work = Path(tempfile.mkdtemp(prefix=".work-", dir=directory))
        staged = None
        try:
            when = archive.utc_now()
            dump = work / archive.DUMP
            snapshot = _open_snapshot(target)
            try:
                if after_snapshot is not None:
                    after_snapshot()
                with dump.open("wb") as out:
                    run_tool(
                        target.endpoint,
                        "pg_dump",
                        ["--format=custom", f"--snapshot={snapshot.name}"],
                        database=target.database,
                        stdout=out,
                        what=f"pg_dump of {target.database}",
                    )
                staged = target.media.stage(snapshot.media, work)
                snapshot.session.execute("COMMIT")
            finally:
                snapshot.session.close()
            say(
                f"dumped {target.database} ({_size(dump.stat().st_size)}, revision "
                f"{snapshot.revision or 'none'}) and gathered {len(staged.files)} media "
                f"file(s) in {_elapsed(started)}"
            )
            if staged.missing:
                say(
                    f"warning: {len(staged.missing)} media file(s) referenced by meetings were "
                    f"already missing from the media directory (recorded in the manifest), "
                    f"e.g. {staged.missing[0]}"
                )
            git_commit, git_dirty = _git()
            manifest = Manifest(
                env=env,
                created_at=when.isoformat(timespec="milliseconds"),
                database=target.database,
                alembic_revision=snapshot.revision,
                row_counts=snapshot.row_counts,
                parts=[],
                app_version=_app_version(),
                git_commit=git_commit,
                git_dirty=git_dirty,
                postgres_version=snapshot.postgres_version,
                runtime=target.runtime,
                media_missing=sorted(staged.missing),
            )
            path = directory / archive.archive_name(env, when)
            with ArchiveWriter(path) as writer:
                writer.add_file(archive.DUMP, dump)
                for name in sorted(staged.files):
                    writer.add_file(archive.media_member(name), staged.directory / name)
                writer.finish(manifest)
        finally:
            if staged is not None:
                staged.cleanup()
            shutil.rmtree(work, ignore_errors=True)
        say(f"wrote {path} ({_size(path.stat().st_size)}) in {_elapsed(started)}")
        if verify_after:
            result = verify(path)
            if not result.ok:
                raise OpsError(
                    f"the new backup {path.name} does not read back intact: "
                    + "; ".join(result.problems),
                    "check the disk (dmesg, df) and run the backup again",
                )
        deleted = prune(env, keep, protect=path) if keep else []
        seconds = time.monotonic() - started
        try:
            record_success(env, path.stat().st_size, seconds)
        except OSError as exc:  # the backup itself is fine: say so, and what monitoring misses
            say(
                f"warning: could not record this backup for monitoring in {status_dir(env)}: "
                f"{exc.strerror or exc}; make that directory writable for you (a container "
                "runtime may have created it as root) or the BackupTooOld alert will fire"
            )
    return Created(path, manifest, seconds, deleted)


SUCCESS_RECORD = "last-success.prom"


def status_dir(env: str) -> Path:
    """Where monitoring reads how the backups of `env` go (no secrets: times and sizes).

    Not backups/<env> itself: that one is private (0700), and the worker's exporter in a
    container runs as another user.
    """
    return project.root() / "backups" / "status" / environments.validate(env)


def record_success(env: str, size: int, seconds: float, directory: Path | None = None) -> Path:
    """Note a verified backup where monitoring reads it: a textfile-collector `.prom` file.

    The worker's exporter (BACKUP_STATUS_DIR) and node-exporter's textfile collector both read
    this format; the alert BackupTooOld fires when the timestamp grows old or goes missing.
    Written under a temporary name and renamed: a scrape never sees half a file.
    """
    directory = directory or status_dir(env)
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    label = f'{{env="{env}"}}'
    text = (
        "# HELP mi_backup_last_success_timestamp_seconds When the last verified backup finished.\n"
        "# TYPE mi_backup_last_success_timestamp_seconds gauge\n"
        f"mi_backup_last_success_timestamp_seconds{label} {time.time():.3f}\n"
        "# HELP mi_backup_last_size_bytes Size of the last verified backup archive.\n"
        "# TYPE mi_backup_last_size_bytes gauge\n"
        f"mi_backup_last_size_bytes{label} {size}\n"
        "# HELP mi_backup_last_duration_seconds How long the last verified backup took.\n"
        "# TYPE mi_backup_last_duration_seconds gauge\n"
        f"mi_backup_last_duration_seconds{label} {seconds:.3f}\n"
    )
    target = directory / SUCCESS_RECORD
    partial = directory / f".{SUCCESS_RECORD}.tmp"
    partial.write_text(text)
    partial.chmod(0o644)
    partial.replace(target)
    return target


def prune(env: str, keep: int, *, protect: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` archives of `env` (and their verification records)."""
    archives = _archives(env)
    doomed = [p for p in archives[: max(0, len(archives) - keep)] if p != protect]
    for path in doomed:
        path.unlink(missing_ok=True)
        archive.sidecar_path(path).unlink(missing_ok=True)
        say(f"deleted {path.name} (--keep {keep})")
    return doomed


def _archives(env: str) -> list[Path]:
    """Archives of `env`, oldest first (their names carry the UTC creation time)."""
    directory = backups_dir(env)
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if archive.is_archive_name(p.name))


# --- list -------------------------------------------------------------------------------------


def _age(then: datetime) -> str:
    seconds = max(0, int((archive.utc_now() - then).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def list_backups(env: str) -> list[dict[str, object]]:
    """One row per archive of `env`, newest first."""
    rows: list[dict[str, object]] = []
    for path in reversed(_archives(env)):
        row: dict[str, object] = {
            "name": path.name,
            "path": str(path),
            "size": _size(path.stat().st_size),
            "bytes": path.stat().st_size,
            "verified": archive.verification_state(path),
        }
        try:
            manifest = archive.read_manifest(path)
        except archive.ArchiveError as exc:
            row.update(age="?", created_at="", revision="?", media=0, verified="unreadable")
            row["problem"] = str(exc)
        else:
            row.update(
                age=_age(manifest.created),
                created_at=manifest.created_at,
                revision=manifest.alembic_revision or "none",
                media=len(manifest.media_parts),
                rows=sum(manifest.row_counts.values()),
            )
        rows.append(row)
    return rows


# --- verify and drill -------------------------------------------------------------------------


@dataclass
class Verified:
    path: Path
    ok: bool
    problems: list[str]
    manifest: Manifest | None
    drilled: bool = False
    detail: str = ""


def _resolve(path: Path | str) -> Path:
    found = Path(path).expanduser()
    if not found.is_absolute():
        found = (Path.cwd() / found).resolve()
    if not found.is_file():
        raise OpsError(f"no backup archive at {found}", "`inv backup.list --env <env>` shows them")
    return found


def verify(path: Path | str, *, drill: bool = False, env: str | None = None) -> Verified:
    """Check every part's size and SHA-256; with `drill`, also restore the dump into a
    scratch database on `env`'s server (default: the backup's own env) and compare."""
    archive_path = _resolve(path)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mi-verify-") as tmp:
        dump = Path(tmp) / archive.DUMP if drill else None
        result = archive.scan(archive_path, dump_to=dump)
        verified = Verified(archive_path, result.ok, list(result.problems), result.manifest)
        if result.ok and drill:
            assert result.manifest is not None and dump is not None
            try:
                verified.detail = _drill(result.manifest, dump, env or result.manifest.env)
                verified.drilled = True
            except OpsError as exc:
                verified.ok = False
                verified.problems.append(f"drill: {exc.problem}")
    _record(archive_path, verified.ok, verified.drilled, verified.problems, verified.detail)
    if verified.ok:
        what = "checksums and a restore drill" if verified.drilled else "checksums"
        say(f"{archive_path.name}: intact ({what}, {_elapsed(started)})")
    return verified


def _record(path: Path, ok: bool, drill: bool, problems: list[str], detail: str = "") -> None:
    """Note the result next to the archive for `inv backup.list` (only next to archives)."""
    if not archive.is_archive_name(path.name):
        return
    try:
        archive.record_verification(path, ok=ok, drill=drill, problems=problems, detail=detail)
    except OSError as exc:
        say(f"note: could not record the result next to {path.name}: {exc}")


def _scratch_name(database: str, kind: str) -> str:
    suffix = f"_{kind}_{uuid.uuid4().hex[:8]}"
    return database[: PG_IDENTIFIER_MAX - len(suffix)] + suffix


def _restore_into(target: Target, database: str, dump: Path) -> None:
    """Create `database` afresh and pg_restore the dump into it."""
    with PsqlSession(target.endpoint, "postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {ident(database)}")
    args = ["--no-owner", "--no-acl", "--exit-on-error"]
    with dump.open("rb") as fh:
        if target.endpoint.restore_input():
            run_tool(
                target.endpoint,
                "pg_restore",
                args,
                database=database,
                stdin=fh,
                what=f"pg_restore into {database}",
            )
        else:
            run_tool(
                target.endpoint,
                "pg_restore",
                [*args, f"--jobs={RESTORE_JOBS}", str(dump)],
                database=database,
                what=f"pg_restore into {database}",
            )


def _compare_with_manifest(target: Target, database: str, manifest: Manifest) -> list[str]:
    with PsqlSession(target.endpoint, database) as session:
        counts = table_counts(session)
        revision = alembic_revision(session)
    problems = []
    if revision != manifest.alembic_revision:
        problems.append(
            f"Alembic revision {revision} after restore, the manifest says "
            f"{manifest.alembic_revision}"
        )
    for table in sorted(set(counts) | set(manifest.row_counts)):
        got, want = counts.get(table), manifest.row_counts.get(table)
        if got != want:
            problems.append(f"{table}: {got} rows after restore, the manifest says {want}")
    return problems


def _drop(target: Target, database: str) -> None:
    with PsqlSession(target.endpoint, "postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE)")


def _drill(manifest: Manifest, dump: Path, env: str) -> str:
    target = for_env(env)
    scratch = _scratch_name(target.database, "drill")
    started = time.monotonic()
    try:
        _restore_into(target, scratch, dump)
        problems = _compare_with_manifest(target, scratch, manifest)
    finally:
        _drop(target, scratch)
    if problems:
        raise OpsError("; ".join(problems))
    rows = sum(manifest.row_counts.values())
    return (
        f"restored into scratch database {scratch} on {env}'s server: {rows} rows in "
        f"{len(manifest.row_counts)} tables and revision {manifest.alembic_revision} match "
        f"({_elapsed(started)}); scratch dropped"
    )


def safety_backup(env: str) -> Path:
    """What `inv db.migrate/downgrade` run first on staging/prod: a verified backup."""
    created = create(env, verify_after=True)
    return created.path


# --- restore ----------------------------------------------------------------------------------


@dataclass
class Restored:
    path: Path
    manifest: Manifest
    seconds: float
    migrated_to: str | None = None  # the head revision, when the backup was older


def _known_revisions() -> tuple[list[str], str]:
    from backend.db import migrations

    return [rev for rev, _ in migrations.history()], migrations.head()


def check_restorable(manifest: Manifest, env: str, from_env: str | None) -> None:
    """Refuse another env's backup (unless named) and one from code newer than ours."""
    if manifest.env != env and from_env != manifest.env:
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
    env: str,
    path: Path | str,
    *,
    yes: bool = False,
    from_env: str | None = None,
    timeout: float = HEALTH_TIMEOUT,
) -> Restored:
    """Replace `env`'s database and media with a backup's, refusing on any doubt first."""
    from ops import console

    archive_path = _resolve(path)
    try:
        manifest = archive.read_manifest(archive_path)
    except archive.ArchiveError as exc:
        raise OpsError(
            f"refusing to restore: {exc}",
            f"nothing was changed; pick another backup (`inv backup.list --env {env}`)",
        ) from None
    check_restorable(manifest, env, from_env)
    target = for_env(env)
    console.confirm(
        f"replace {env}'s database {target.database!r} and its media with the backup of "
        f"{manifest.env} from {manifest.created_at} ({len(manifest.media_parts)} media files)?",
        yes,
    )
    started = time.monotonic()
    with _exclusive(env) as directory:
        work = Path(tempfile.mkdtemp(prefix=".work-", dir=directory))
        media_dir = target.media.restore_dir(work)
        incoming = _scratch_name(target.database, "restore")
        try:
            media_bytes = sum(p.size for p in manifest.media_parts)
            _require_space(work, manifest.size - media_bytes)
            _require_space(media_dir, media_bytes)
            result = archive.scan(archive_path, dump_to=work / archive.DUMP, media_to=media_dir)
            _record(archive_path, result.ok, False, result.problems)
            if not result.ok:
                raise OpsError(
                    "refusing to restore, the archive is not intact: " + "; ".join(result.problems),
                    f"nothing was changed; restore another backup (`inv backup.list --env {env}`)",
                )
            say(f"verified and unpacked {archive_path.name} in {_elapsed(started)}")
            try:
                _restore_into(target, incoming, work / archive.DUMP)
            except PgError as exc:
                raise OpsError(
                    f"refusing to restore, the dump does not load: {exc.problem}",
                    exc.fix or "nothing was changed; `inv backup.verify --drill` shows the same",
                ) from None
            problems = _compare_with_manifest(target, incoming, manifest)
            if problems:
                raise OpsError(
                    "refusing to restore, the restored copy differs from the manifest: "
                    + "; ".join(problems),
                    "nothing was changed; run `inv backup.verify --drill` on the archive",
                )
            say(f"restored the dump into {incoming} and checked it ({_elapsed(started)})")
            # The unpacked media must be on disk before the old copy can be deleted; syncing
            # here, while the old stack still serves, keeps it out of the downtime.
            os.sync()
            migrated_to = _swap(target, incoming, media_dir, manifest, timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                _drop(target, incoming)
            raise
        finally:
            shutil.rmtree(media_dir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    say(f"restored {env} from {archive_path.name} in {seconds:.1f}s")
    return Restored(archive_path, manifest, seconds, migrated_to)


def _require_space(directory: Path, needed: int) -> None:
    """Unpacking must not fill the disk the live data is on; 10% and 64 MiB to spare."""
    free = shutil.disk_usage(directory).free
    if needed * 1.1 + 64 * 1024 * 1024 > free:
        raise OpsError(
            f"not enough space to unpack the backup in {directory}: it needs "
            f"{_size(needed)}, {_size(free)} is free",
            "free some disk space (old backups: `inv backup --keep N`), nothing was changed",
        )


def _terminate(admin: PsqlSession, database: str, timeout: float = 30) -> None:
    """Refuse new connections to `database`, end the open ones, wait until none is left."""
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
    target: Target, incoming: str, media_dir: Path, manifest: Manifest, timeout: float
) -> str | None:
    """Stop the apps, rename databases and media into place, migrate, restart; undo on error."""
    live = target.database
    stamp = archive.utc_now().strftime("%Y%m%d%H%M%S")
    suffix = f"_before_{stamp}"
    previous = live[: PG_IDENTIFIER_MAX - len(suffix)] + suffix
    migrated_to = None
    started = time.monotonic()
    if isinstance(target.apps, NoApps):
        say(target.apps.description)
    stopped = target.apps.stop()
    if stopped:
        say(f"stopped {', '.join(stopped)} ({_elapsed(started)})")
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
            say(
                f"migrated the restored database from "
                f"{manifest.alembic_revision or 'an empty schema'} to {head}"
            )
        swapped = time.monotonic()
        target.apps.start(stopped, timeout)
    except BaseException as exc:
        say(f"restore failed ({exc}); putting the previous data back")
        _undo(target, stopped, live, previous, moved_old, moved_new, media_token, timeout)
        if isinstance(exc, OpsError):
            raise OpsError(
                f"restore failed and was rolled back: {exc.problem}",
                f"the {target.env} stack runs on its previous data; fix the cause and retry",
            ) from exc
        raise
    with PsqlSession(target.endpoint, "postgres") as admin:
        if moved_old:
            admin.execute(f"DROP DATABASE IF EXISTS {ident(previous)} WITH (FORCE)")
    if media_token is not None:
        target.media.finish(media_token)
    if stopped:
        say(f"started {', '.join(stopped)} again: healthy ({_elapsed(swapped)})")
    return migrated_to


def _undo(
    target: Target,
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
    failed = _scratch_name(live, "failed")
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
