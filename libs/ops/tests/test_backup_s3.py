"""`inv backup.*` with the recordings in a bucket (MEDIA_STORE=s3) on a real S3-protocol server
(rclone's `serve s3` on loopback) and a real Postgres: the archive holds exactly the objects
the dumped rows reference, verify (and its drill) checks them, restore puts them back."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mi_testing.objectstore import MediaUnderTest
from mi_testing.stores import Postgres
from ops import backup
from ops import env as env_files
from ops.backup import archive, seal
from ops.environment import Environment
from ops.errors import OpsError
from recordings.s3 import S3Bucket

pytestmark = pytest.mark.objectstore  # `nox -s s3`


def configure(root: Path, url: str, media: MediaUnderTest) -> str:
    """`.env.dev` of the scratch repository: the test database, the test bucket."""
    env_files.setup(Environment.parse("dev"))
    path = root / ".env.dev"
    wanted = {
        "DATABASE_URL": url,
        # Backup and restore connect as the owner role, as in every runtime.
        "DATABASE_OWNER_URL": re.sub(r"://[^@/]*@", f"://{Postgres.OWNER}@", url, count=1),
        "MEDIA_STORE": "s3",
        "S3_ENDPOINT_URL": media.fields["s3_endpoint_url"],
        "S3_BUCKET": media.fields["s3_bucket"],
        "S3_ACCESS_KEY_ID": media.fields["s3_access_key_id"],
        "S3_SECRET_ACCESS_KEY": media.fields["s3_secret_access_key"],
    }
    lines = []
    for line in path.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={wanted[key]}" if key in wanted else line)
    path.write_text("\n".join(lines) + "\n")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def add_meeting(url: str, media: MediaUnderTest, title: str) -> uuid.UUID:
    """As the upload path does it: the object first, then the row."""
    meeting_id = uuid.uuid4()
    name = f"{meeting_id.hex}.wav"
    data = b"RIFF" + hashlib.sha256(title.encode()).digest() * 40
    media.put(name, data)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO meetings (id, title, status, media_filename, content_type, size_bytes)"
            " VALUES (%s, %s, 'done', %s, 'audio/wav', %s)",
            (meeting_id, title, name, len(data)),
        )
    return meeting_id


def delete_meeting(url: str, media: MediaUnderTest, meeting_id: uuid.UUID) -> None:
    """As the API does it: the row first, the object after the commit."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "DELETE FROM meetings WHERE id = %s RETURNING media_filename", (meeting_id,)
        ).fetchone()
    assert row is not None
    media.remove(row[0])


def state(url: str, media: MediaUnderTest) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, title, media_filename FROM meetings ORDER BY id").fetchall()
    objects = {n: hashlib.sha256(media.read(n)).hexdigest() for n in media.names()}
    return {"rows": rows, "objects": objects}


def every_key(media: MediaUnderTest) -> list[str]:
    store = media.store
    assert isinstance(store, S3Bucket)
    return sorted(store.keys(""))


@pytest.fixture
def dev(scratch_root: Path, database_url: str, s3_media: MediaUnderTest) -> str:
    return configure(scratch_root, database_url, s3_media)


def test_backup_verify_drill_and_restore_with_s3_media(dev: str, s3_media: MediaUnderTest) -> None:
    env = Environment.parse("dev")
    ids = [add_meeting(dev, s3_media, f"meeting {i}") for i in range(3)]
    before = state(dev, s3_media)

    created = backup.create(env)
    parts = {p.name.removeprefix("media/"): p.sha256 for p in created.manifest.media_parts}
    assert parts == before["objects"]
    assert every_key(s3_media) == sorted(before["objects"])  # the staged copies are gone

    drilled = backup.verify(created.path, drill=True)
    assert drilled.ok and drilled.drilled, drilled.problems
    assert archive.verification_state(created.path) == "drilled"

    # Afterwards: a new meeting, one deleted, a stray object, one recording damaged in place.
    add_meeting(dev, s3_media, "after the backup")
    delete_meeting(dev, s3_media, ids[0])
    s3_media.put("stray.wav", b"not from the backup")
    assert state(dev, s3_media) != before

    backup.restore(env, created.path, yes=True)
    assert state(dev, s3_media) == before
    assert every_key(s3_media) == sorted(before["objects"])  # nothing set aside is left


def test_a_delete_during_the_backup_does_not_wait_and_the_archive_has_the_recording(
    dev: str, s3_media: MediaUnderTest
) -> None:
    meeting_id = add_meeting(dev, s3_media, "raced")
    name = f"{meeting_id.hex}.wav"

    def delete_now() -> None:
        # The recording is set aside and the row lock released: the delete goes straight
        # through while the snapshot (and so the dump) still has the row.
        worker = threading.Thread(target=delete_meeting, args=(dev, s3_media, meeting_id))
        worker.start()
        worker.join(5)
        assert not worker.is_alive(), "the delete waited for the backup"
        assert name not in s3_media.names()

    created = backup.create(Environment.parse("dev"), after_snapshot=delete_now)
    assert [p.name for p in created.manifest.media_parts] == [f"media/{name}"]
    assert created.manifest.row_counts["public.meetings"] == 1
    assert created.manifest.media_missing == []
    assert every_key(s3_media) == []  # the set-aside copy is gone too


def test_backup_names_an_unusable_bucket_and_writes_nothing(
    scratch_root: Path, database_url: str, s3_media: MediaUnderTest
) -> None:
    url = configure(scratch_root, database_url, s3_media)
    add_meeting(url, s3_media, "one")
    env_path = scratch_root / ".env.dev"
    env_path.write_text(
        env_path.read_text().replace(
            f"S3_SECRET_ACCESS_KEY={s3_media.fields['s3_secret_access_key']}",
            "S3_SECRET_ACCESS_KEY=wrong-secret-0123456789abcdef",
        )
    )
    with pytest.raises(OpsError, match="S3_SECRET_ACCESS_KEY is not the secret"):
        backup.create(Environment.parse("dev"))
    assert not list((scratch_root / "backups" / "dev").glob("*.tar"))


def test_the_cronjob_uploads_a_verified_archive_and_keeps_the_newest(
    dev: str,
    s3_media: MediaUnderTest,
    database_owner_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ops import project
    from ops.backup import cronjob

    add_meeting(dev, s3_media, "nightly")

    def no_checkout() -> Path:
        raise OpsError("no repository root above /app")

    monkeypatch.setattr(project, "root", no_checkout)  # the job's image has no checkout
    environ = {
        "APP_ENV": "prod",
        "DATABASE_URL": database_owner_url,  # infra/k8s/base/backup.yaml: the owner's URL
        "MEDIA_STORE": "s3",
        "S3_ENDPOINT_URL": s3_media.fields["s3_endpoint_url"],
        "S3_BUCKET": s3_media.fields["s3_bucket"],
        "S3_ACCESS_KEY_ID": s3_media.fields["s3_access_key_id"],
        "S3_SECRET_ACCESS_KEY": s3_media.fields["s3_secret_access_key"],
        "BACKUP_WORK_DIR": str(tmp_path / "work"),
        "BACKUP_KEEP": "2",
        "BACKUP_KEY": "the-cluster-backup-key-0123456789",
    }
    keys = [cronjob.run(environ) for _ in range(3)]
    assert all(k.startswith("backups/prod/mi-prod-") for k in keys)
    stored = [k for k in every_key(s3_media) if k.startswith("backups/")]
    assert sorted(k for k in stored if k.endswith(".tar")) == sorted(keys[1:])  # BACKUP_KEEP=2
    assert list((tmp_path / "work").glob("*.tar")) == []  # scratch space is emptied

    # What was uploaded is a complete backup: fetch it and check every part.
    store = s3_media.store
    assert isinstance(store, S3Bucket)
    fetched = tmp_path / keys[-1].rsplit("/", 1)[-1]
    store.client.download_file(store.location.bucket, keys[-1], str(fetched))
    key = seal.BackupKey.from_secret(environ["BACKUP_KEY"])
    checked = backup.verify(fetched, key=key)
    assert checked.ok and checked.manifest is not None
    assert len(checked.manifest.media_parts) == 1
    assert checked.manifest.key_id == key.key_id  # signed by the job's key
    foreign = backup.verify(fetched, key=seal.BackupKey.from_secret("x" * 32))
    assert not foreign.ok and "another BACKUP_KEY" in foreign.problems[0]

    # Encrypted at rest when asked: no recording byte is readable in what was uploaded.
    encrypted = cronjob.run({**environ, "BACKUP_ENCRYPT": "true"})
    store.client.download_file(store.location.bucket, encrypted, str(fetched))
    recording = s3_media.read(s3_media.names()[0])
    assert recording[100:164] not in fetched.read_bytes()
    decrypted = backup.verify(fetched, key=key)
    assert decrypted.ok and decrypted.manifest is not None
    assert decrypted.manifest.encryption == seal.ENCRYPTION

    no_key = {k: v for k, v in environ.items() if k != "BACKUP_KEY"}
    assert cronjob.main(no_key) == 2  # nothing is made that nobody could authenticate

    assert cronjob.main({**environ, "MEDIA_STORE": "local"}) == 2
    assert cronjob.main({**environ, "S3_SECRET_ACCESS_KEY": "wrong-secret-0123456789ab"}) == 1
