"""`inv backup.*` against a real Postgres (the mi_testing plugin's pgserver) and real files.

The env file of a scratch repository points DATABASE_URL at a per-test database at head and
MEDIA_DIR at a temp directory; no app services run (the runtime is "direct"), except in the
concurrency tests, where the real backend API serves uploads and deletes during backups.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import tarfile
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from mi_testing import ApiServer, free_port
from mi_testing.stores import Postgres
from ops import backup, db
from ops import env as env_files
from ops.backup import archive, seal
from ops.backup.lock import exclusive
from ops.backup.record import SUCCESS_RECORD
from ops.environment import Environment
from ops.errors import OpsError

pytestmark = pytest.mark.slow

API_TOKEN = "backup-test-token-0123456789"


# --- a scratch environment --------------------------------------------------------------------


@dataclass
class Env:
    name: str
    url: str  # libpq URL of the database
    media: Path
    root: Path


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def as_role(url: str, role: str) -> str:
    """`url` (the test cluster's, over its socket) connecting as `role` instead."""
    return re.sub(r"://[^@/]*@", f"://{role}@", url, count=1)


def configure(root: Path, env: str, url: str, media: Path) -> Env:
    """The env file points the services (DATABASE_URL) at `url`'s database as the app role,
    and backup/restore (DATABASE_OWNER_URL) at it as the owner role, as a real one does."""
    env_files.setup(Environment.parse(env))
    path = root / f".env.{env}"
    url = as_role(url, Postgres.APP)
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("DATABASE_URL="):
            line = f"DATABASE_URL={url}"
        elif line.startswith("DATABASE_OWNER_URL="):
            line = f"DATABASE_OWNER_URL={as_role(url, Postgres.OWNER)}"
        elif line.startswith("MEDIA_DIR="):
            line = f"MEDIA_DIR={media}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    media.mkdir(parents=True, exist_ok=True)
    return Env(env, _libpq(url), media, root)


@pytest.fixture
def dev(scratch_root: Path, database_url: str, tmp_path: Path) -> Env:
    return configure(scratch_root, "dev", database_url, tmp_path / "media")


def wav(seconds: float = 0.05, seed: int = 0) -> bytes:
    """A small WAV with random samples: every file has its own hash."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes(rng.getrandbits(8) for _ in range(int(seconds * 16_000) * 2)))
    return buffer.getvalue()


def add_meeting(env: Env, title: str, *, seed: int = 0) -> uuid.UUID:
    """Like the upload path: the file is written first, then the rows commit."""
    meeting_id = uuid.uuid4()
    name = f"{meeting_id.hex}.wav"
    data = wav(seed=seed)
    (env.media / name).write_bytes(data)
    with psycopg.connect(env.url) as conn:
        conn.execute(
            "INSERT INTO meetings (id, title, status, media_filename, original_filename,"
            " content_type, size_bytes) VALUES (%s, %s, 'done', %s, 'm.wav', 'audio/wav', %s)",
            (meeting_id, title, name, len(data)),
        )
        transcript_id = conn.execute(
            "INSERT INTO transcripts (meeting_id, text, language, engine, model, audio_seconds,"
            " processing_seconds) VALUES (%s, %s, 'en', 't', 't', 1.5, 0.2) RETURNING id",
            (meeting_id, f"{title} transcript. Alice will send the report."),
        ).fetchone()[0]
        for position, text in enumerate([title, "Alice will send the report"]):
            conn.execute(
                "INSERT INTO transcript_segments (transcript_id, position, start_seconds,"
                " end_seconds, text) VALUES (%s, %s, %s, %s, %s)",
                (transcript_id, position, position * 1.0, position + 0.9, text),
            )
        conn.execute(
            "INSERT INTO summaries (meeting_id, text, topics, engine, model)"
            " VALUES (%s, %s, '[\"report\"]', 'extractive', 't')",
            (meeting_id, f"summary of {title}"),
        )
        conn.execute(
            "INSERT INTO action_items (meeting_id, position, text, owner, due)"
            " VALUES (%s, 0, 'send the report', 'Alice', 'Friday')",
            (meeting_id,),
        )
        conn.execute(
            "INSERT INTO search_documents (meeting_id, title, summary, transcript)"
            " VALUES (%s, %s, %s, %s)",
            (meeting_id, title, f"summary of {title}", f"{title} transcript"),
        )
    return meeting_id


def delete_meeting(env: Env, meeting_id: uuid.UUID) -> None:
    """Like the API: the row (and its children) go first, the file after the commit."""
    with psycopg.connect(env.url) as conn:
        name = conn.execute(
            "DELETE FROM meetings WHERE id = %s RETURNING media_filename", (meeting_id,)
        ).fetchone()[0]
    (env.media / name).unlink()


def state(env: Env) -> dict[str, Any]:
    """Every row of every table and every media file's hash: what "equal" means here."""
    with psycopg.connect(env.url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        rows = {
            table: conn.execute(
                f"SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')"  # noqa: S608
                f" FROM public.{table} AS t"
            ).fetchone()[0]
            for table in tables
        }
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in env.media.iterdir()}
    return {"rows": rows, "media": files}


def databases(env: Env) -> set[str]:
    with psycopg.connect(env.url) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def seed(env: Env, count: int = 3) -> list[uuid.UUID]:
    return [add_meeting(env, f"meeting {i}", seed=i) for i in range(count)]


# --- rewriting archives for the refusal tests -------------------------------------------------


def dev_key() -> seal.BackupKey:
    return seal.key_from(Environment.parse("dev").values(), ".env.dev")


def set_value(env: Env, key: str, value: str) -> None:
    path = env.root / f".env.{env.name}"
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{key}=")]
    path.write_text("\n".join([*lines, f"{key}={value}"]) + "\n")


def repack(
    source: Path,
    target: Path,
    change: Callable[[dict[str, Any]], None],
    *,
    sign: seal.BackupKey | None = None,
    mac: bool = True,
) -> Path:
    """A copy of `source` whose manifest `change` edited, with valid checksums throughout:
    only the content of the manifest is wrong, not the archive's integrity. Its MAC is the
    old one (what an attacker without the key can do), or made with `sign`, or left out."""
    with tarfile.open(source) as tar, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out:
        for member in tar:
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == archive.MANIFEST_SUM:
                continue
            if member.name == seal.MAC_MEMBER and (sign is not None or not mac):
                continue
            if member.name == archive.MANIFEST:
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
            if member.name == archive.MANIFEST:
                line = f"{hashlib.sha256(data).hexdigest()}  {archive.MANIFEST}\n".encode()
                info = tarfile.TarInfo(archive.MANIFEST_SUM)
                info.size = len(line)
                out.addfile(info, io.BytesIO(line))
                if sign is not None:
                    line = sign.mac_line(data)
                    info = tarfile.TarInfo(seal.MAC_MEMBER)
                    info.size = len(line)
                    out.addfile(info, io.BytesIO(line))
    return target


def member_offset(path: Path, name: str) -> tuple[int, int]:
    with tarfile.open(path) as tar:
        member = tar.getmember(name)
        return member.offset_data, member.size


def flip_bit(path: Path, offset: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x10]))


# --- the round trip ---------------------------------------------------------------------------


def test_restore_brings_back_exactly_the_backup_moment(dev: Env) -> None:
    ids = seed(dev, 4)
    before = state(dev)
    created = backup.create(Environment.parse("dev"))

    manifest = created.manifest
    assert created.path.parent == dev.root / "backups" / "dev"
    assert created.path.name.startswith("mi-dev-") and created.path.suffix == ".tar"
    assert manifest.env == "dev" and manifest.database == dev.url.split("/")[3].split("?")[0]
    assert manifest.alembic_revision == db.status(Environment.parse("dev"))[1]
    assert manifest.row_counts["public.meetings"] == 4
    assert manifest.row_counts["public.transcript_segments"] == 8
    assert manifest.app_version and manifest.created_at.endswith("+00:00")
    media_parts = {p.name.removeprefix("media/"): p.sha256 for p in manifest.media_parts}
    assert media_parts == before["media"]
    assert archive.verification_state(created.path) == "verified"

    # Everything changes: new meetings, edits, a deletion, a stray file.
    add_meeting(dev, "added after the backup", seed=10)
    with psycopg.connect(dev.url) as conn:
        conn.execute("UPDATE meetings SET title = 'renamed' WHERE id = %s", (ids[0],))
        conn.execute("UPDATE transcripts SET text = 'rewritten' WHERE meeting_id = %s", (ids[1],))
    delete_meeting(dev, ids[2])
    (dev.media / "stray.wav").write_bytes(b"not from the backup")
    assert state(dev) != before

    restored = backup.restore(Environment.parse("dev"), created.path, yes=True)

    assert state(dev) == before
    assert restored.migrated_to is None, "a backup at head needs no migration"
    leftovers = {d for d in databases(dev) if "_restore_" in d or "_before_" in d}
    assert not leftovers, "scratch and previous databases are dropped after success"
    assert not [p for p in dev.media.parent.iterdir() if p.name.startswith(".media.")]


def test_restore_while_clients_hold_connections(dev: Env) -> None:
    seed(dev, 2)
    created = backup.create(Environment.parse("dev"))
    before = state(dev)
    add_meeting(dev, "after", seed=5)
    idle = psycopg.connect(dev.url)  # an app's pooled connection, idle
    busy = psycopg.connect(dev.url)  # one inside an open transaction holding a lock
    busy.execute("SELECT * FROM meetings FOR UPDATE").fetchall()
    try:
        backup.restore(Environment.parse("dev"), created.path, yes=True)
        assert state(dev) == before
        for conn in (idle, busy):
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1").fetchone()
    finally:
        idle.close()
        busy.close()


def test_backup_of_an_older_revision_is_migrated_forward(
    scratch_root: Path,
    empty_database_url: str,
    tmp_path: Path,
) -> None:
    env = configure(scratch_root, "dev", empty_database_url, tmp_path / "media")
    created = backup.create(Environment.parse("dev"))  # an empty database: no revision yet
    assert created.manifest.alembic_revision is None
    assert created.manifest.row_counts == {}
    restored = backup.restore(Environment.parse("dev"), created.path, yes=True)
    head = db.status(Environment.parse("dev"))[1]
    assert restored.migrated_to == head and db.status(Environment.parse("dev")) == (head, head)
    assert "meetings" in str(state(env)["rows"].keys())


# --- refusals leave everything untouched ------------------------------------------------------


def _truncate(path: Path, tmp: Path) -> Path:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    return path


def _flip_in_dump(path: Path, tmp: Path) -> Path:
    offset, size = member_offset(path, archive.DUMP)
    flip_bit(path, offset + size // 2)
    return path


def _flip_in_media(path: Path, tmp: Path) -> Path:
    with tarfile.open(path) as tar:
        name = next(m.name for m in tar if m.name.startswith("media/"))
    offset, size = member_offset(path, name)
    flip_bit(path, offset + size - 3)
    return path


def _flip_in_manifest(path: Path, tmp: Path) -> Path:
    offset, size = member_offset(path, archive.MANIFEST)
    text = path.read_bytes()[offset : offset + size]
    # A digit of a row count: still valid JSON, only the checksum can tell.
    flip_bit(path, offset + text.index(b'"public.meetings": ') + len(b'"public.meetings": '))
    return path


def _unknown_revision(path: Path, tmp: Path) -> Path:
    def newer(manifest: dict[str, Any]) -> None:
        manifest["alembic_revision"] = "9999"

    return repack(path, tmp / path.name, newer, sign=dev_key())


def _wrong_counts(path: Path, tmp: Path) -> Path:
    def more(manifest: dict[str, Any]) -> None:
        manifest["row_counts"]["public.meetings"] += 1

    return repack(path, tmp / path.name, more, sign=dev_key())


def _unsigned_change(path: Path, tmp: Path) -> Path:
    def fewer(manifest: dict[str, Any]) -> None:
        manifest["row_counts"]["public.meetings"] -= 1

    return repack(path, tmp / path.name, fewer)  # the old MAC: it no longer matches


def _not_ours(path: Path, tmp: Path) -> Path:
    other = tmp / "other.tar"
    with tarfile.open(other, "w") as tar:
        tar.add(path, arcname="database.dump")
    return other


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, "truncated or damaged|incomplete|missing"),
        (_flip_in_dump, "database.dump: SHA-256 differs"),
        (_flip_in_media, r"media/\w+\.wav: SHA-256 differs"),
        (_flip_in_manifest, "the manifest is damaged"),
        (_unknown_revision, "revision 9999, which this code does not know"),
        (_wrong_counts, "public.meetings: 3 rows after restore, the manifest says 4"),
        (_unsigned_change, "its MAC does not match its manifest: the archive was altered"),
        (_not_ours, "manifest.json is missing|has no manifest.json"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "",
)
def test_a_bad_archive_is_refused_and_nothing_changes(
    dev: Env, tmp_path: Path, damage: Callable[[Path, Path], Path], message: str
) -> None:
    seed(dev, 3)
    created = backup.create(Environment.parse("dev"))
    add_meeting(dev, "the live data has moved on", seed=9)
    before, dbs_before = state(dev), databases(dev)
    broken = damage(created.path, tmp_path)

    with pytest.raises(OpsError, match=message) as info:
        backup.restore(Environment.parse("dev"), broken, yes=True)

    assert state(dev) == before
    assert databases(dev) == dbs_before, "no scratch database is left behind"
    if "revision" not in message:
        assert "nothing was changed" in str(info.value)
    if damage in (_flip_in_dump, _flip_in_media):
        assert archive.verification_state(broken) == "FAILED"


def test_a_backup_of_another_env_is_refused_unless_named(
    dev: Env, scratch_root: Path, tmp_path: Path
) -> None:
    ids = seed(dev, 2)
    # staging's env file points at the same database here: only the label differs.
    url = (scratch_root / ".env.dev").read_text().split("DATABASE_URL=", 1)[1].splitlines()[0]
    configure(scratch_root, "staging", url, dev.media)
    staging_backup = backup.create(Environment.parse("staging"))
    assert staging_backup.path.parent.name == "staging"
    delete_meeting(dev, ids[0])
    before = state(dev)

    with pytest.raises(OpsError, match="this is a backup of staging, not of dev") as info:
        backup.restore(Environment.parse("dev"), staging_backup.path, yes=True)
    assert "--from-env staging" in str(info.value)
    with pytest.raises(OpsError, match="backup of staging"):
        backup.restore(Environment.parse("dev"), staging_backup.path, yes=True, from_env="prod")
    assert state(dev) == before

    backup.restore(Environment.parse("dev"), staging_backup.path, yes=True, from_env="staging")
    assert len(state(dev)["rows"]["meetings"]) == 2


def test_restore_asks_and_refuses_without_a_terminal(dev: Env, monkeypatch) -> None:
    seed(dev, 1)
    created = backup.create(Environment.parse("dev"))
    add_meeting(dev, "later", seed=3)
    before = state(dev)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(OpsError, match="refusing without confirmation") as info:
        backup.restore(Environment.parse("dev"), created.path)
    assert "--yes" in str(info.value)
    assert state(dev) == before


# --- archives this deployment made, and only those -----------------------------------------


def test_an_archive_of_another_deployment_is_refused_unless_trusted(dev: Env, capsys) -> None:
    seed(dev, 2)
    created = backup.create(Environment.parse("dev"))
    ours = dev_key().key_id
    # Another deployment: the same env name, another BACKUP_KEY.
    set_value(dev, "BACKUP_KEY", "another-deployments-key-0123456789abcdef")
    add_meeting(dev, "the live data has moved on", seed=9)
    before, dbs_before = state(dev), databases(dev)

    with pytest.raises(OpsError, match=f"signed with another BACKUP_KEY \\(key id {ours}") as info:
        backup.restore(Environment.parse("dev"), created.path, yes=True)
    assert "--trust-unsigned" in str(info.value) and "nothing was changed" in str(info.value)
    assert state(dev) == before and databases(dev) == dbs_before
    refused = backup.verify(created.path)
    assert not refused.ok and "--trust-unsigned" in refused.problems[0]

    assert backup.verify(created.path, trust=True).ok
    backup.restore(Environment.parse("dev"), created.path, yes=True, trust=True)
    assert "is not signed by dev's BACKUP_KEY" in capsys.readouterr().out
    assert len(state(dev)["rows"]["meetings"]) == 2


def test_an_unsigned_archive_of_an_older_version_needs_the_flag(dev: Env, tmp_path: Path) -> None:
    seed(dev, 2)
    created = backup.create(Environment.parse("dev"))

    def as_before_signing(manifest: dict[str, Any]) -> None:
        manifest["format"] = archive.UNSIGNED_FORMAT
        del manifest["key_id"], manifest["encryption"]

    old = repack(created.path, tmp_path / created.path.name, as_before_signing, mac=False)
    add_meeting(dev, "later", seed=9)
    before = state(dev)
    with pytest.raises(OpsError, match="carries no MAC") as info:
        backup.restore(Environment.parse("dev"), old, yes=True)
    assert "--trust-unsigned" in str(info.value)
    assert state(dev) == before

    backup.restore(Environment.parse("dev"), old, yes=True, trust=True)
    assert len(state(dev)["rows"]["meetings"]) == 2


def test_a_tampered_part_with_a_rewritten_manifest_is_refused(dev: Env, tmp_path: Path) -> None:
    """What an attacker without the key can do at best: change a recording and make every
    checksum agree again. Only the MAC tells."""
    seed(dev, 2)
    created = backup.create(Environment.parse("dev"))
    forged = tmp_path / created.path.name
    evil = b"RIFF forged recording"
    with (
        tarfile.open(created.path) as tar,
        tarfile.open(forged, "w", format=tarfile.PAX_FORMAT) as out,
    ):
        victim = next(m.name for m in tar if m.name.startswith("media/"))
        for member in tar:
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == victim:
                data = evil
            elif member.name == archive.MANIFEST:
                manifest = json.loads(data)
                for part in manifest["parts"]:
                    if part["name"] == victim:
                        part.update(size=len(evil), sha256=hashlib.sha256(evil).hexdigest())
                data = json.dumps(manifest).encode()
            elif member.name == archive.MANIFEST_SUM:
                raw = json.dumps(manifest).encode()
                data = f"{hashlib.sha256(raw).hexdigest()}  {archive.MANIFEST}\n".encode()
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    before = state(dev)
    with pytest.raises(OpsError, match="its MAC does not match its manifest"):
        backup.restore(Environment.parse("dev"), forged, yes=True)
    assert state(dev) == before
    assert not backup.verify(forged).ok


def test_an_encrypted_archive_round_trips_and_hides_the_data(dev: Env, tmp_path: Path) -> None:
    set_value(dev, "BACKUP_ENCRYPT", "true")
    seed(dev, 2)
    before = state(dev)
    created = backup.create(Environment.parse("dev"))
    assert created.manifest.encryption == seal.ENCRYPTION
    raw = created.path.read_bytes()
    for name in before["media"]:
        assert (dev.media / name).read_bytes()[100:164] not in raw, "a recording is readable"
    assert b"Alice will send the report" not in raw, "the dump is readable"
    assert backup.verify(created.path, drill=True).ok

    for meeting in state(dev)["rows"]["meetings"]:
        delete_meeting(dev, uuid.UUID(meeting["id"]))
    backup.restore(Environment.parse("dev"), created.path, yes=True)
    assert state(dev) == before

    # A bit flipped inside an encrypted recording: its chunk no longer decrypts.
    damaged = tmp_path / created.path.name
    damaged.write_bytes(raw)
    with tarfile.open(damaged) as tar:
        name = next(m.name for m in tar if m.name.startswith("media/"))
    offset, size = member_offset(damaged, name)
    flip_bit(damaged, offset + size // 2)
    with pytest.raises(OpsError, match="does not decrypt with this deployment's BACKUP_KEY"):
        backup.restore(Environment.parse("dev"), damaged, yes=True)
    assert state(dev) == before

    # Another deployment's key cannot read it, trusted or not.
    set_value(dev, "BACKUP_KEY", "another-deployments-key-0123456789abcdef")
    result = backup.verify(created.path, trust=True)
    assert not result.ok and "does not decrypt" in "; ".join(result.problems)


def test_no_backup_without_a_backup_key(dev: Env) -> None:
    seed(dev, 1)
    set_value(dev, "BACKUP_KEY", "change-me")
    with pytest.raises(OpsError, match="BACKUP_KEY is a placeholder") as info:
        backup.create(Environment.parse("dev"))
    assert "inv env.setup --env" in str(info.value)
    assert not list((dev.root / "backups" / "dev").glob("*.tar"))


# --- consistency while the app writes ---------------------------------------------------------


def _backend_settings(env: Env, redis_url: str) -> Any:
    from backend.config import BackendSettings

    return BackendSettings(
        database_url=(env.root / ".env.dev").read_text().split("DATABASE_URL=")[1].split()[0],
        redis_url=redis_url,
        api_token=API_TOKEN,
        media_dir=env.media,
        whisper_url=f"127.0.0.1:{free_port()}",
        llm_url=f"http://127.0.0.1:{free_port()}",
    )


def _api_delete(api: ApiServer, meeting_id: uuid.UUID) -> int:
    with httpx.Client(base_url=api.url, timeout=60) as client:
        response = client.delete(
            f"/api/v1/meetings/{meeting_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        return response.status_code


def test_a_delete_during_the_dump_does_not_wait_and_the_archive_keeps_the_meeting(
    dev: Env,
    redis_url: str,
) -> None:
    from backend.main import create_app

    ids = seed(dev, 3)
    victim = ids[1]
    outcome: dict[str, Any] = {}

    with ApiServer(create_app(_backend_settings(dev, redis_url))) as api:

        def race() -> None:
            # The recordings are set aside, the dump has not started: no row is locked.
            started = time.monotonic()
            outcome["status"] = _api_delete(api, victim)
            outcome["seconds"] = time.monotonic() - started
            outcome["file gone"] = not (dev.media / f"{victim.hex}.wav").exists()

        created = backup.create(Environment.parse("dev"), after_snapshot=race)

    assert outcome["status"] == 204 and outcome["file gone"]
    assert outcome["seconds"] < 2, "the delete waited for the backup"
    # The snapshot predates the delete: its row is in the dump and its file in the archive.
    assert created.manifest.row_counts["public.meetings"] == 3
    assert f"media/{victim.hex}.wav" in {p.name for p in created.manifest.media_parts}

    backup.restore(Environment.parse("dev"), created.path, yes=True)
    assert (dev.media / f"{victim.hex}.wav").exists()
    assert len(state(dev)["rows"]["meetings"]) == 3


def test_a_delete_while_the_recordings_are_set_aside_waits_only_for_that(
    dev: Env, redis_url: str, monkeypatch
) -> None:
    from backend.main import create_app
    from ops.runtimes.local.data import LocalStager

    ids = seed(dev, 3)
    victim = ids[0]
    original = LocalStager.add
    outcome: dict[str, Any] = {}

    with ApiServer(create_app(_backend_settings(dev, redis_url))) as api:

        def add(self: LocalStager, names: Any) -> list[str]:
            outcome["calls"] = outcome.get("calls", 0) + 1
            if outcome["calls"] == 1:  # what is there already, before any lock
                return original(self, names)
            # The rows are locked now: the delete must wait until the lock is released.
            deleter = threading.Thread(
                target=lambda: outcome.update(status=_api_delete(api, victim))
            )
            deleter.start()
            time.sleep(0.5)
            outcome["waited"] = deleter.is_alive()
            outcome["deleter"] = deleter
            return original(self, names)

        def after() -> None:
            outcome["deleter"].join(10)
            outcome["done before the dump"] = not outcome["deleter"].is_alive()

        monkeypatch.setattr(LocalStager, "add", add)
        created = backup.create(Environment.parse("dev"), after_snapshot=after)

    assert outcome["calls"] == 2 and outcome["waited"], "the delete went through the lock"
    assert outcome["done before the dump"] and outcome["status"] == 204
    assert not (dev.media / f"{victim.hex}.wav").exists(), "the API deleted it afterwards"
    assert f"media/{victim.hex}.wav" in {p.name for p in created.manifest.media_parts}
    assert created.manifest.row_counts["public.meetings"] == 3
    assert created.manifest.media_missing == []


def test_a_meeting_deleted_before_the_lock_is_in_neither_dump_nor_archive(
    dev: Env, monkeypatch
) -> None:
    from ops.runtimes.local.data import LocalStager

    ids = seed(dev, 3)
    original = LocalStager.add

    def add(self: LocalStager, names: Any) -> list[str]:
        gone = original(self, names)
        if len(names) == 3:
            # Set aside before the lock, then deleted (file and all) before the snapshot.
            delete_meeting(dev, ids[2])
        return gone

    monkeypatch.setattr(LocalStager, "add", add)
    created = backup.create(Environment.parse("dev"))
    assert created.manifest.row_counts["public.meetings"] == 2
    assert {p.name for p in created.manifest.media_parts} == {f"media/{i.hex}.wav" for i in ids[:2]}
    assert created.manifest.media_missing == []
    assert backup.verify(created.path, drill=True).ok


def test_backups_during_concurrent_uploads_and_deletes_are_consistent(
    dev: Env,
    redis_url: str,
    tmp_path: Path,
) -> None:
    from backend.config import BackendSettings
    from backend.main import create_app

    seed(dev, 5)
    settings = BackendSettings(
        database_url=(dev.root / ".env.dev").read_text().split("DATABASE_URL=")[1].split()[0],
        redis_url=redis_url,
        api_token=API_TOKEN,
        media_dir=dev.media,
        whisper_url=f"127.0.0.1:{free_port()}",
        llm_url=f"http://127.0.0.1:{free_port()}",
    )
    stop = threading.Event()
    done: dict[str, int] = {"uploads": 0, "deletes": 0}
    errors: list[str] = []

    def writer(api: ApiServer, number: int) -> None:
        rng = random.Random(number)
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        mine: list[str] = []
        with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
            while not stop.is_set():
                if mine and rng.random() < 0.4:
                    response = client.delete(f"/api/v1/meetings/{mine.pop(0)}")
                    key, expected = "deletes", 204
                else:
                    files = {"file": ("m.wav", wav(seed=rng.getrandbits(32)), "audio/wav")}
                    response = client.post("/api/v1/meetings", files=files)
                    key, expected = "uploads", 202
                    if response.status_code == 202:
                        mine.append(response.json()["id"])
                if response.status_code != expected:
                    errors.append(f"{response.status_code}: {response.text}")
                done[key] += 1

    archives = []
    with ApiServer(create_app(settings)) as api:
        threads = [threading.Thread(target=writer, args=(api, n)) for n in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            for _ in range(3):
                archives.append(backup.create(Environment.parse("dev"), verify_after=False))
                time.sleep(0.3)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    assert not errors, errors[:3]
    assert done["uploads"] > 10 and done["deletes"] > 3, done

    for created in archives:
        result = backup.verify(created.path, drill=True)
        assert result.ok, result.problems
        manifest = created.manifest
        assert manifest.media_missing == []
        assert len(manifest.media_parts) == manifest.row_counts["public.meetings"]

    last = archives[-1]
    backup.restore(Environment.parse("dev"), last.path, yes=True)
    with psycopg.connect(dev.url) as conn:
        rows = conn.execute("SELECT media_filename, size_bytes FROM meetings").fetchall()
    assert len(rows) == last.manifest.row_counts["public.meetings"]
    for name, size in rows:
        assert (dev.media / name).stat().st_size == size, f"{name} of a restored meeting"
    assert sorted(p.name for p in dev.media.iterdir()) == sorted(n for n, _ in rows)


# --- verify, drill, list, retention -----------------------------------------------------------


def test_verify_and_drill(dev: Env, capsys) -> None:
    seed(dev, 2)
    created = backup.create(Environment.parse("dev"), verify_after=False)
    assert archive.verification_state(created.path) == "no"

    assert backup.verify(created.path).ok
    assert archive.verification_state(created.path) == "verified"

    before = databases(dev)
    drilled = backup.verify(created.path, drill=True)
    assert drilled.ok and drilled.drilled, drilled.problems
    assert "rows in" in drilled.detail and "scratch dropped" in drilled.detail
    assert databases(dev) == before, "the scratch database is dropped"
    assert archive.verification_state(created.path) == "drilled"

    wrong = repack(
        created.path,
        created.path.with_name("mi-dev-20000101T000000.000Z.tar"),
        lambda m: m["row_counts"].update({"public.action_items": 7}),
        sign=dev_key(),
    )
    result = backup.verify(wrong)
    assert result.ok, "checksums alone cannot see a wrong count"
    result = backup.verify(wrong, drill=True)
    assert not result.ok
    assert result.problems == [
        "drill: public.action_items: 2 rows after restore, the manifest says 7"
    ]
    assert archive.verification_state(wrong) == "FAILED"
    assert databases(dev) == before

    os.utime(created.path)  # touched after its check: the record no longer vouches for it
    assert archive.verification_state(created.path) == "stale"


def test_list_and_retention(dev: Env, capsys) -> None:
    seed(dev, 1)
    first = backup.create(Environment.parse("dev")).path
    second = backup.create(Environment.parse("dev"), verify_after=False).path
    add_meeting(dev, "one more", seed=4)
    third = backup.create(Environment.parse("dev")).path
    (first.parent / f".{first.name}.partial").write_bytes(b"half an archive")

    rows = backup.list_backups(Environment.parse("dev"))
    assert [r["name"] for r in rows] == [third.name, second.name, first.name]
    newest = rows[0]
    assert newest["verified"] == "verified" and rows[1]["verified"] == "no"
    assert newest["revision"] == db.status(Environment.parse("dev"))[1]
    assert newest["media"] == 2 and rows[2]["media"] == 1
    assert newest["age"].endswith("s") and str(newest["size"]).endswith("KiB")

    fourth = backup.create(Environment.parse("dev"), keep=2)
    remaining = sorted(p.name for p in (dev.root / "backups" / "dev").iterdir())
    assert remaining == sorted(
        [
            third.name,
            archive.sidecar_path(third).name,
            fourth.path.name,
            archive.sidecar_path(fourth.path).name,
            ".lock",
        ]
    ), "the two oldest went, with their records; the crashed partial was cleaned up"
    assert fourth.deleted == [first, second]

    third.write_bytes(third.read_bytes()[:2000])
    listed = {r["name"]: r for r in backup.list_backups(Environment.parse("dev"))}
    assert listed[third.name]["verified"] == "unreadable"


def test_a_second_backup_of_the_same_env_waits_its_turn(dev: Env) -> None:
    seed(dev, 1)
    with (
        exclusive(Environment.parse("dev")),
        pytest.raises(OpsError, match="another backup or restore"),
    ):
        backup.create(Environment.parse("dev"))


def test_no_partial_archive_survives_a_failed_backup(dev: Env, monkeypatch) -> None:
    seed(dev, 2)

    def boom(*args: object, **kwargs: object) -> object:
        raise OSError("disk full")

    monkeypatch.setattr(archive.ArchiveWriter, "finish", boom)
    with pytest.raises(OSError, match="disk full"):
        backup.create(Environment.parse("dev"))
    left = list((dev.root / "backups" / "dev").iterdir())
    assert [p.name for p in left] == [".lock"]
    assert not [p for p in dev.media.parent.iterdir() if p.name.startswith(".media.")]


# --- the safety backup before staging/prod schema changes -------------------------------------


@pytest.fixture
def staging(scratch_root: Path, database_url: str, tmp_path: Path) -> Iterator[Env]:
    yield configure(scratch_root, "staging", database_url, tmp_path / "staging-media")


def test_schema_changes_on_staging_take_a_verified_backup_first(staging: Env, capsys) -> None:
    take = db.safety_backup(Environment.parse("staging"), skip=False)
    assert take is not None
    assert db.safety_backup(Environment.parse("staging"), skip=True) is None
    assert db.safety_backup(Environment.parse("dev"), skip=False) is None

    add_meeting(staging, "kept safe", seed=1)
    message = db.downgrade(Environment.parse("staging"), "base", backup=take)
    assert "to base" in message
    out = capsys.readouterr().out
    assert "safety backup: " in out
    path = Path(out.split("safety backup: ", 1)[1].splitlines()[0])
    assert path.parent == staging.root / "backups" / "staging"
    assert archive.verification_state(path) == "verified"

    backup.restore(Environment.parse("staging"), path, yes=True)
    assert [r["title"] for r in state(staging)["rows"]["meetings"]] == ["kept safe"]


def test_a_restore_that_fails_after_the_swap_puts_the_previous_data_back(
    dev: Env, monkeypatch
) -> None:
    from ops.runtimes.local.data import NoApps

    seed(dev, 2)
    created = backup.create(Environment.parse("dev"))
    add_meeting(dev, "only in the live data", seed=7)
    before, dbs_before = state(dev), databases(dev)
    calls: list[str] = []

    def unhealthy(self: object, names: object, timeout: float) -> None:
        calls.append("start")
        if len(calls) == 1:  # the restored stack does not come up; the rolled-back one does
            raise OpsError("not healthy after 120s: backend: 503")

    monkeypatch.setattr(NoApps, "stop", lambda self: ["backend", "worker"])
    monkeypatch.setattr(NoApps, "start", unhealthy)
    with pytest.raises(OpsError, match="restore failed and was rolled back: not healthy") as info:
        backup.restore(Environment.parse("dev"), created.path, yes=True)
    assert "runs on its previous data" in str(info.value)
    assert calls == ["start", "start"]
    assert state(dev) == before
    assert databases(dev) == dbs_before
    assert not [p for p in dev.media.parent.iterdir() if p.name.startswith(".media.")]


def test_an_unreachable_database_says_to_start_the_stack(scratch_root: Path, tmp_path) -> None:
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    port = free_port()  # nothing listens there
    path.write_text(path.read_text().replace("POSTGRES_PORT=5433", f"POSTGRES_PORT={port}"))
    with pytest.raises(OpsError, match="the database does not answer") as info:
        backup.create(Environment.parse("dev"))
    assert "inv up --env" in str(info.value)
    assert [p.name for p in (scratch_root / "backups" / "dev").iterdir()] == [".lock"]


def test_verifying_a_file_that_is_no_backup_says_so_and_writes_nothing(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not an archive")
    result = backup.verify(other)
    assert not result.ok
    assert any("truncated or damaged" in p for p in result.problems)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(OpsError, match="no backup archive at"):
        backup.verify(tmp_path / "missing.tar")


def test_an_upload_deleted_between_lock_and_snapshot_makes_the_backup_start_over(
    dev: Env, monkeypatch
) -> None:
    from ops.backup import pgclient

    seed(dev, 2)
    late: list[uuid.UUID] = []
    snapshots: list[str] = []
    execute, value = pgclient.PsqlSession.execute, pgclient.PsqlSession.value

    def execute_hooked(self: pgclient.PsqlSession, sql: str, **kw: Any) -> list[str]:
        if sql.startswith("BEGIN ISOLATION LEVEL REPEATABLE READ") and not late:
            # The rows are locked; this upload commits before the snapshot: it is in the
            # snapshot without being locked.
            late.append(add_meeting(dev, "late", seed=9))
        return execute(self, sql, **kw)

    def value_hooked(self: pgclient.PsqlSession, sql: str, **kw: Any) -> str | None:
        answer = value(self, sql, **kw)
        if "pg_export_snapshot" in sql:
            snapshots.append(answer or "")
            if len(snapshots) == 1:
                # ... and it is deleted, file and all, before the backup could lock it.
                delete_meeting(dev, late[0])
        return answer

    monkeypatch.setattr(pgclient.PsqlSession, "execute", execute_hooked)
    monkeypatch.setattr(pgclient.PsqlSession, "value", value_hooked)
    created = backup.create(Environment.parse("dev"))
    assert len(snapshots) == 2, "the first snapshot lost a recording: a second one was taken"
    assert created.manifest.row_counts["public.meetings"] == 2
    assert f"media/{late[0].hex}.wav" not in {p.name for p in created.manifest.media_parts}
    assert len(created.manifest.media_parts) == 2
    assert created.manifest.media_missing == []


def test_an_upload_between_lock_and_snapshot_is_locked_and_archived(dev: Env, monkeypatch) -> None:
    from ops.backup import pgclient

    seed(dev, 2)
    late: list[uuid.UUID] = []
    execute = pgclient.PsqlSession.execute

    def execute_hooked(self: pgclient.PsqlSession, sql: str, **kw: Any) -> list[str]:
        if sql.startswith("BEGIN ISOLATION LEVEL REPEATABLE READ") and not late:
            late.append(add_meeting(dev, "late", seed=9))
        return execute(self, sql, **kw)

    monkeypatch.setattr(pgclient.PsqlSession, "execute", execute_hooked)
    created = backup.create(Environment.parse("dev"))
    assert created.manifest.row_counts["public.meetings"] == 3
    assert f"media/{late[0].hex}.wav" in {p.name for p in created.manifest.media_parts}


# --- the record monitoring reads ------------------------------------------------------------


@pytest.mark.observability
def test_a_verified_backup_is_recorded_for_monitoring(dev: Env) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    seed(dev, 1)
    before = time.time()
    created = backup.create(Environment.parse("dev"))
    record = dev.root / "backups" / "status" / "dev" / SUCCESS_RECORD
    samples = {
        s.name: (s.labels, s.value)
        for family in text_string_to_metric_families(record.read_text())
        for s in family.samples
    }
    stamp_labels, stamp = samples["mi_backup_last_success_timestamp_seconds"]
    assert stamp_labels == {"env": "dev"}
    assert before <= stamp <= time.time()
    assert samples["mi_backup_last_size_bytes"][1] == created.path.stat().st_size
    assert oct(record.stat().st_mode & 0o777) == "0o644"  # another user (a container) reads it


@pytest.mark.observability
def test_a_backup_whose_record_cannot_be_written_still_succeeds(dev: Env, capsys) -> None:
    seed(dev, 1)
    status = dev.root / "backups" / "status"
    status.mkdir(parents=True)
    (status / "dev").write_text("not a directory")  # what root-owned leftovers do, for any user
    created = backup.create(Environment.parse("dev"))
    assert created.path.exists()
    assert "could not record this backup for monitoring" in capsys.readouterr().out
