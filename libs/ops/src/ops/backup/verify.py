"""`inv backup.verify`: every part's checksum, and with `--drill` a restore into a scratch
database compared with the manifest. The restore helpers here serve `inv backup.restore` too."""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ops import console, runtimes
from ops.backup import archive, seal
from ops.backup.archive import Manifest
from ops.backup.pgclient import PsqlSession, alembic_revision, ident, run_tool, table_counts
from ops.backup.seal import BackupKey
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes import StackData

RESTORE_JOBS = 2
PG_IDENTIFIER_MAX = 63


@dataclass
class Verified:
    path: Path
    ok: bool
    problems: list[str]
    manifest: Manifest | None
    drilled: bool = False
    detail: str = ""


def resolve(path: Path | str) -> Path:
    found = Path(path).expanduser()
    if not found.is_absolute():
        found = (Path.cwd() / found).resolve()
    if not found.is_file():
        raise OpsError(f"no backup archive at {found}", "`inv backup.list --env <env>` shows them")
    return found


def deployment_key(env: Environment, *, trust: bool) -> BackupKey | None:
    """`env`'s BACKUP_KEY; without one, an error that says how to make it (None when the
    caller trusts the archive anyway: an unencrypted one can still be read)."""
    try:
        if not env.env_file.exists():
            raise OpsError(
                f"there is no {env.env_file.name}, which holds {seal.KEY_NAME} of {env}",
                f"give --env of this deployment, or add {seal.TRUST_FLAG} if you trust the archive",
            )
        return seal.key_from(env.values(), env.env_file.name)
    except OpsError:
        if trust:
            return None
        raise


def verify(
    path: Path | str,
    *,
    drill: bool = False,
    env: Environment | None = None,
    key: BackupKey | None = None,
    trust: bool = False,
) -> Verified:
    """Check the archive's MAC against `env`'s BACKUP_KEY (default: the backup's own env;
    `trust` accepts an archive it did not sign) and every part's size and SHA-256; with
    `drill`, also restore the dump into a scratch database on `env`'s server and compare."""
    archive_path = resolve(path)
    started = time.monotonic()
    if key is None:
        owner = env or _archive_env(archive_path)
        # No owner: the archive is unreadable, and the scan below says how.
        key = deployment_key(owner, trust=trust) if owner else None
    with tempfile.TemporaryDirectory(prefix="mi-verify-") as tmp:
        dump = Path(tmp) / archive.DUMP if drill else None
        result = archive.scan(archive_path, key=key, trust=trust, dump_to=dump)
        verified = Verified(archive_path, result.ok, list(result.problems), result.manifest)
        if result.ok and drill:
            assert result.manifest is not None and dump is not None
            try:
                verified.detail = _drill(
                    result.manifest, dump, env or Environment.parse(result.manifest.env)
                )
                verified.drilled = True
            except OpsError as exc:
                verified.ok = False
                verified.problems.append(f"drill: {exc.problem}")
    record(archive_path, verified.ok, verified.drilled, verified.problems, verified.detail)
    if verified.ok:
        what = "checksums and a restore drill" if verified.drilled else "checksums"
        if not trust:
            what = "signature, " + what
        console.say(f"{archive_path.name}: intact ({what}, {console.elapsed(started)})")
    return verified


def _archive_env(path: Path) -> Environment | None:
    """The environment the archive says it is of (its MAC is checked later)."""
    try:
        return Environment.parse(archive.read_manifest(path).env)
    except (archive.ArchiveError, OpsError):
        return None


def record(path: Path, ok: bool, drill: bool, problems: list[str], detail: str = "") -> None:
    """Note the result next to the archive for `inv backup.list` (only next to archives)."""
    if not archive.is_archive_name(path.name):
        return
    try:
        archive.record_verification(path, ok=ok, drill=drill, problems=problems, detail=detail)
    except OSError as exc:
        console.say(f"note: could not record the result next to {path.name}: {exc}")


def scratch_name(database: str, kind: str) -> str:
    suffix = f"_{kind}_{uuid.uuid4().hex[:8]}"
    return database[: PG_IDENTIFIER_MAX - len(suffix)] + suffix


def restore_into(target: StackData, database: str, dump: Path) -> None:
    """Create `database` afresh and pg_restore the dump into it."""
    with PsqlSession(target.endpoint, "postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {ident(database)}")
    # --no-comments: the dump's only comment is pgvector's own, which only the extension's
    # owner (the superuser) may set; the owner role restores, and the extension is already
    # there (template1 carries it, infra/postgres/roles.psql).
    args = ["--no-owner", "--no-acl", "--no-comments", "--exit-on-error"]
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


def compare_with_manifest(target: StackData, database: str, manifest: Manifest) -> list[str]:
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


def drop(target: StackData, database: str) -> None:
    with PsqlSession(target.endpoint, "postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE)")


def _drill(manifest: Manifest, dump: Path, env: Environment) -> str:
    target = runtimes.running(env).data()
    scratch = scratch_name(target.database, "drill")
    started = time.monotonic()
    try:
        restore_into(target, scratch, dump)
        problems = compare_with_manifest(target, scratch, manifest)
    finally:
        drop(target, scratch)
    if problems:
        raise OpsError("; ".join(problems))
    rows = sum(manifest.row_counts.values())
    return (
        f"restored into scratch database {scratch} on {env}'s server: {rows} rows in "
        f"{len(manifest.row_counts)} tables and revision {manifest.alembic_revision} match "
        f"({console.elapsed(started)}); scratch dropped"
    )
