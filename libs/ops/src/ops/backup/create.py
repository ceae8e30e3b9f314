"""`inv backup.create`: one consistent archive of the database and the media it references.

Deletes are never held up for the length of the dump or of the media copy:

1. The recordings the meetings reference now are set aside, with no lock: hard links locally
   and inside the compose volume, server-side copies in a bucket (in parallel).
2. A READ COMMITTED session locks every meeting row `FOR KEY SHARE` (a DELETE of one waits;
   the worker's status updates and new uploads do not), then a REPEATABLE READ transaction
   exports its snapshot (pg_dump dumps exactly that later) and lists the recordings its rows
   reference. Rows that committed between the two are locked as well. Recordings uploaded
   since step 1 are set aside, and the lock is released: it lasted milliseconds. Recordings
   never change once stored, so step 1's copies are the snapshot's; those of meetings deleted
   before the snapshot are left out.
3. pg_dump reads the snapshot and the archive is written from what was set aside, with no lock
   held: the app deletes freely, and a deleted original leaves its set-aside copy intact.

Uploads write their file before their row commits; deletes commit first and unlink after. So a
locked row has its file (or it was removed outside the app: recorded in the manifest as
missing). An upload that commits between the lock and the snapshot and is deleted again,
file and all, before its own lock would leave the dump referencing a recording the archive
lacks: the backup then starts over with a fresh snapshot (it takes milliseconds to happen).
Only files referenced by dumped rows are archived; uploads still in flight and orphans are not.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ops import console, project, runtimes
from ops.backup import archive, catalog, record, seal, verify
from ops.backup.archive import ArchiveWriter, Manifest
from ops.backup.lock import exclusive
from ops.backup.pgclient import (
    PsqlSession,
    alembic_revision,
    literal,
    run_tool,
    table_counts,
)
from ops.backup.seal import BackupKey
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes import StackData
from ops.runtimes.base import Staged

# The meetings schema: recordings are named by meetings.media_filename, in MEDIA_DIR or a bucket.
MEDIA_TABLE = "public.meetings"
MEDIA_COLUMN = "media_filename"
# A fresh snapshot per attempt; one is lost only to an upload deleted within milliseconds.
SNAPSHOT_ATTEMPTS = 5
ROW_LOCK_TIMEOUT = "60s"  # waiting on an in-flight DELETE; longer means something is stuck


@dataclass
class Snapshot:
    """What one REPEATABLE READ transaction saw; pg_dump imports the same snapshot."""

    session: PsqlSession
    name: str
    media: list[str]
    revision: str | None
    row_counts: dict[str, int]
    postgres_version: str
    locked_seconds: float = 0.0  # how long deletes of meetings could have had to wait


class _RacedError(Exception):
    """A meeting of the snapshot was deleted, file and all, before it could be set aside."""


def _lock_rows(guard: PsqlSession, names: Sequence[str] | None = None) -> set[str]:
    """Lock meeting rows (all, or those of `names`) against deletion; their recordings.

    READ COMMITTED: a row whose DELETE is in flight is waited for, then skipped if the delete
    committed; never a serialization failure."""
    where = ""
    if names is not None:
        where = f" WHERE {MEDIA_COLUMN} = ANY(ARRAY[{', '.join(map(literal, names))}]::text[])"
    locked: list[str] = guard.json(
        f"SELECT coalesce(jsonb_agg({MEDIA_COLUMN}), '[]') FROM ("  # noqa: S608 - constants, quoted names
        f"SELECT {MEDIA_COLUMN} FROM {MEDIA_TABLE}{where} FOR KEY SHARE) AS locked"
    )
    return {name for name in locked if name}


def _snapshot_and_set_aside(target: StackData, scratch: Path) -> tuple[Snapshot, Staged]:
    """Steps 1 and 2 of the module doc: the snapshot, and its recordings set aside while their
    rows are locked. Everything slow (starting processes and containers, setting aside what
    is there already) happens before the lock; under it: one statement, the snapshot, the
    links or copies of what was uploaded meanwhile."""
    stager = target.media.stager(scratch)
    guard = PsqlSession(target.endpoint, target.database)
    session = PsqlSession(target.endpoint, target.database)
    try:
        has_media = guard.value(f"SELECT to_regclass({literal(MEDIA_TABLE)}) IS NOT NULL") == "t"
        listing = f"SELECT coalesce(jsonb_agg({MEDIA_COLUMN}), '[]') FROM {MEDIA_TABLE}"  # noqa: S608 - constants
        # Set aside what is there now, before any lock: recordings never change once stored
        # (names are never reused), so these are the snapshot's own for every row it keeps.
        # Under the lock only the few uploaded since are left to do.
        early: set[str] = set()
        if has_media:
            listed = [m for m in guard.json(listing) if m]
            early = set(listed) - set(stager.add(listed))
        guard.execute(f"BEGIN; SET LOCAL lock_timeout = {literal(ROW_LOCK_TIMEOUT)}")
        # Lock first, then snapshot: a delete that commits in between cannot exist.
        lock_started = time.monotonic()
        locked = _lock_rows(guard) if has_media else set()
        session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # The first statement fixes the snapshot; everything below reads the same one.
        name = session.value("SELECT pg_export_snapshot()") or ""
        media = [m for m in session.json(listing) if m] if has_media else []
        # Uploads that committed between the lock and the snapshot: lock them too.
        extras = [m for m in media if m not in locked]
        if extras:
            locked |= _lock_rows(guard, extras)
        gone = stager.add([m for m in media if m not in early])
        guard.execute("COMMIT")
        locked_seconds = time.monotonic() - lock_started
        raced = [n for n in gone if n not in locked]
        if raced:
            raise _RacedError(raced[0])
        snapshot = Snapshot(
            session=session,
            name=name,
            media=media,
            revision=alembic_revision(session),
            row_counts=table_counts(session),
            postgres_version=session.value("SHOW server_version") or "",
            locked_seconds=locked_seconds,
        )
        staged = stager.staged()
        # Set aside early but deleted before the snapshot: not in the dump, not archived.
        wanted = set(media)
        staged.files = [f for f in staged.files if f in wanted]
        staged.missing = sorted(gone)  # locked rows without a file: removed outside the app
        return snapshot, staged
    except BaseException:
        stager.discard()
        session.close()
        raise
    finally:
        guard.close()


def _git() -> tuple[str | None, bool | None]:
    """The checkout's commit and whether tracked files differ from it (None: not a checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=project.root(),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    try:
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError, OpsError):  # OpsError: not in a checkout
        return None, None


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


def write_archive(
    target: StackData,
    env_name: str,
    directory: Path,
    *,
    key: BackupKey,
    encrypt: bool,
    started: float,
    after_snapshot: Callable[[], None] | None = None,
) -> tuple[Path, Manifest]:
    """One archive of `target`'s data in `directory` (see the module doc); its path and
    manifest. The caller holds whatever lock keeps two runs apart."""
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=directory))
    staged = None
    try:
        when = archive.utc_now()
        dump = work / archive.DUMP
        for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
            try:
                snapshot, staged = _snapshot_and_set_aside(target, work)
            except _RacedError as raced:
                if attempt == SNAPSHOT_ATTEMPTS:
                    raise OpsError(
                        f"{SNAPSHOT_ATTEMPTS} snapshots in a row lost a new recording to a "
                        f"delete before it could be set aside (last: {raced})",
                        "the app is uploading and deleting meetings very fast; run the "
                        "backup again",
                    ) from None
                continue
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
                snapshot.session.execute("COMMIT")
            finally:
                snapshot.session.close()
            break
        assert staged is not None
        console.say(
            f"dumped {target.database} ({console.size(dump.stat().st_size)}, revision "
            f"{snapshot.revision or 'none'}) and gathered {len(staged.files)} media "
            f"file(s) in {console.elapsed(started)}; meeting rows were locked against deletion "
            f"for {snapshot.locked_seconds * 1000:.0f} ms"
        )
        if staged.missing:
            console.say(
                f"warning: {len(staged.missing)} media file(s) referenced by meetings were "
                f"already missing from the media store (recorded in the manifest), "
                f"e.g. {staged.missing[0]}"
            )
        git_commit, git_dirty = _git()
        manifest = Manifest(
            env=env_name,
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
        path = directory / archive.archive_name(env_name, when)
        with ArchiveWriter(path, key, encrypt=encrypt) as writer:
            writer.add_file(archive.DUMP, dump)
            for name in sorted(staged.files):
                with staged.open(name) as part:
                    member = archive.media_member(name)
                    writer.add_stream(member, part.stream, part.size, mtime=part.mtime)
            writer.finish(manifest)
    finally:
        if staged is not None:
            staged.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return path, manifest


def create(
    env: Environment,
    *,
    keep: int = 0,
    verify_after: bool = True,
    after_snapshot: Callable[[], None] | None = None,
) -> Created:
    """Back up `env`'s database and media into one archive under backups/<env>/.

    `after_snapshot` runs once the recordings are set aside and no row is locked, before
    pg_dump: tests use it to race a delete against the backup.
    """
    if keep < 0:
        raise OpsError(f"--keep {keep}: give the number of backups to keep (0 keeps all)", code=2)
    values = env.values()
    key = seal.key_from(values, env.env_file.name)
    encrypt = seal.encrypt_wanted(values)
    target = runtimes.running(env).data()
    started = time.monotonic()
    with exclusive(env) as directory:
        path, manifest = write_archive(
            target,
            env.name,
            directory,
            key=key,
            encrypt=encrypt,
            started=started,
            after_snapshot=after_snapshot,
        )
        written = console.size(path.stat().st_size)
        console.say(f"wrote {path} ({written}) in {console.elapsed(started)}")
        if verify_after:
            result = verify.verify(path, key=key)
            if not result.ok:
                raise OpsError(
                    f"the new backup {path.name} does not read back intact: "
                    + "; ".join(result.problems),
                    "check the disk (dmesg, df) and run the backup again",
                )
        deleted = catalog.prune(env, keep, protect=path) if keep else []
        seconds = time.monotonic() - started
        try:
            record.record_success(env, path.stat().st_size, seconds)
        except OSError as exc:  # the backup itself is fine: say so, and what monitoring misses
            console.say(
                f"warning: could not record this backup for monitoring in "
                f"{env.backup_status_dir}: {exc.strerror or exc}; make that directory writable "
                "for you (a container runtime may have created it as root) or the BackupTooOld "
                "alert will fire"
            )
    return Created(path, manifest, seconds, deleted)


def safety_backup(env: Environment) -> Path:
    """What `inv db.migrate/downgrade` run first on staging/prod: a verified backup."""
    created = create(env, verify_after=True)
    return created.path
