"""Backup and restore through the compose runtime, with a `docker` stand-in that does the work.

No Docker engine runs here. The stand-in on PATH records every argv it gets (like
test_compose_runtime.py's) and then does what the container would: `exec -T postgres <tool>`
runs the same Postgres client tool from the pgserver wheel against the test server, and
`run ... backend -c <script> sh /data/media ...` runs the same sh script against a local
directory standing in for the media volume. So the argv shapes are checked, and the scripts
and the data flow through them are real.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import subprocess
import sys
import tarfile
import textwrap
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ops import backup, binaries, runtimes
from ops import env as env_files
from ops.environment import Environment
from ops.runtimes.compose.data import (
    DROP_SCRIPT,
    FETCH_SCRIPT,
    LINK_SCRIPT,
    ROLLBACK_SCRIPT,
    SWAP_SCRIPT,
)

pytestmark = pytest.mark.slow

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[:1] == ["version"] or args[-1:] == ["version"]:
        print("27.3.1")
        sys.exit(0)
    assert args[0] == "compose", args
    rest = args[args.index("--env-file") + 2:]
    if rest[:3] == ["exec", "-T", "-e"]:
        # exec -T -e PGAPPNAME=... postgres <tool> --username U ... --dbname D
        tool, database = rest[5], rest[-1]
        assert rest[4] == "postgres" and rest[6] == "--username" and rest[-2] == "--dbname"
        # The container's socket trusts every role: connect as the one asked for.
        conninfo = f"host={{os.environ['FAKE_PG_HOST']}} user={{rest[7]}} dbname={{database}}"
        binary = os.path.join(os.environ["FAKE_PG_BIN"], tool)
        os.execv(binary, [binary, *rest[8:-2], "--dbname", conninfo])
    if rest[:6] == ["run", "--rm", "--no-deps", "-T", "--entrypoint", "sh"]:
        service, script, mount = rest[6], rest[8], rest[10]
        assert service == "backend" and rest[7] == "-c" and mount == "/data/media", rest
        os.execv("/bin/sh", ["sh", "-c", script, "sh", os.environ["FAKE_MEDIA"], *rest[11:]])
    if rest == ["run", "--rm", "--no-deps", "migrate"]:
        from meetings.migrations import upgrade
        upgrade(os.environ["FAKE_DATABASE_URL"])
    sys.exit(0)
    """
)


@pytest.fixture
def compose_dev(
    scratch_root: Path, database_url: str, database_owner_url: str, tmp_path: Path, monkeypatch
):
    """`dev` recorded as run by compose; the stand-in reaches the test database and media."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(STAND_IN.format(python=sys.executable))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "docker.log"
    media = tmp_path / "volume-media"
    media.mkdir()
    libpq = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    database = libpq.split("/")[3].split("?")[0]
    pg_bin = binaries.require(binaries.postgres("pg_dump")).parent
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("FAKE_PG_HOST", libpq.split("host=")[1])
    monkeypatch.setenv("FAKE_PG_BIN", str(pg_bin))
    monkeypatch.setenv("FAKE_MEDIA", str(media))
    monkeypatch.setenv("FAKE_DATABASE_URL", database_owner_url)  # the migrate service's
    env_files.setup(Environment.parse("dev"))
    env_file = scratch_root / ".env.dev"
    env_file.write_text(
        env_file.read_text().replace("POSTGRES_DB=meetings", f"POSTGRES_DB={database}")
    )
    runtimes.remember(Environment.parse("dev"), "compose")
    return {"url": libpq, "media": media, "log": log}


def _calls(log: Path) -> list[list[str]]:
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # What follows the common `compose -p mi-dev -f ... --env-file .env.dev` prefix.
    return [c[c.index("--env-file") + 2 :] for c in calls if "--env-file" in c]


def _state(url: str, media: Path) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        meetings = conn.execute("SELECT id, title, media_filename FROM meetings ORDER BY id")
        rows = [tuple(map(str, r)) for r in meetings]
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in media.iterdir()}
    return {"rows": rows, "media": files}


def _add(url: str, media: Path, title: str) -> str:
    meeting_id = uuid.uuid4()
    name = f"{meeting_id.hex}.wav"
    (media / name).write_bytes(b"RIFF" + uuid.uuid4().bytes * 64)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO meetings (id, title, status, media_filename, content_type, size_bytes)"
            " VALUES (%s, %s, 'done', %s, 'audio/wav', 1)",
            (meeting_id, title, name),
        )
    return name


def test_backup_and_restore_through_docker_compose(compose_dev) -> None:
    url, media, log = compose_dev["url"], compose_dev["media"], compose_dev["log"]
    target = runtimes.running(Environment.parse("dev")).data()
    assert target.runtime == "compose"
    first = _add(url, media, "one")
    _add(url, media, "two")
    (media / ".incoming-abc.part").write_bytes(b"an upload in flight: not archived")
    created = backup.create(Environment.parse("dev"))
    assert {p.name for p in created.manifest.media_parts} == {
        f"media/{p.name}" for p in media.iterdir() if not p.name.startswith(".")
    }
    before = _state(url, media)
    dump = [c for c in _calls(log) if c[:1] == ["exec"] and "pg_dump" in c]
    assert dump and dump[0][:8] == [
        "exec",
        "-T",
        "-e",
        "PGAPPNAME=mi-backup",
        "postgres",
        "pg_dump",
        "--username",
        "mi_owner",  # the owner role, never the superuser
    ]
    assert any(a.startswith("--snapshot=") for a in dump[0])

    (media / first).unlink()
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM meetings WHERE media_filename = %s", (first,))
    _add(url, media, "three")
    log.write_text("")

    backup.restore(Environment.parse("dev"), created.path, yes=True)

    after = _state(url, media)
    assert after["rows"] == before["rows"]
    assert {k: v for k, v in after["media"].items() if not k.startswith(".")} == {
        k: v for k, v in before["media"].items() if not k.startswith(".")
    }
    assert not [
        p for p in media.iterdir() if p.name.startswith((".before-", ".restore-", ".phase-"))
    ]
    calls = _calls(log)
    stop = calls.index(["stop", "backend", "worker"])
    swap = next(i for i, c in enumerate(calls) if c[:1] == ["run"] and SWAP_SCRIPT in c)
    up = calls.index(["up", "-d", "--wait", "--wait-timeout", "120", "backend", "worker"])
    assert stop < swap < up, "the apps are stopped for the swap and started after it"
    restores = [c for c in calls if "pg_restore" in c]
    assert restores and "--jobs=2" not in restores[0], "the dump travels on stdin, serially"


# --- the media scripts, run by sh on a directory ----------------------------------------------


def _tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _sh(script: str, media: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", script, "sh", str(media), *args], input=stdin, capture_output=True, check=False
    )


def _files(media: Path) -> dict[str, bytes | str]:
    return {p.name: "<dir>" if p.is_dir() else p.read_bytes() for p in media.iterdir()}


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    for name in ("a.wav", "b.wav", "-looks-like-an-option.wav"):
        (media / name).write_bytes(name.encode() * 10)
    return media


def test_link_fetch_drop_scripts_set_aside_only_the_named_files(volume: Path) -> None:
    names = b"a.wav\n-looks-like-an-option.wav\ngone.wav\n\nb.wav\n\n"
    proc = _sh(LINK_SCRIPT, volume, "k1", stdin=names)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"ready\ngone gone.wav\ndone\ndone\n"
    aside = volume / ".backup-k1"
    assert sorted(p.name for p in aside.iterdir()) == [
        "-looks-like-an-option.wav",
        "a.wav",
        "b.wav",
    ]
    assert (aside / "a.wav").stat().st_ino == (volume / "a.wav").stat().st_ino  # a link

    (volume / "a.wav").unlink()  # the app deletes the original: the link keeps the bytes
    proc = _sh(FETCH_SCRIPT, volume, "k1")
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        files = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert files == {n: n.encode() * 10 for n in ("a.wav", "b.wav", "-looks-like-an-option.wav")}

    assert _sh(DROP_SCRIPT, volume, "k1").returncode == 0
    assert sorted(p.name for p in volume.iterdir()) == ["-looks-like-an-option.wav", "b.wav"]


def test_swap_then_rollback_restores_the_original_files(volume: Path) -> None:
    original = _files(volume)
    restored = {"c.wav": b"restored c", "a.wav": b"restored a"}
    proc = _sh(SWAP_SCRIPT, volume, "r1", stdin=_tar_of(restored))
    assert proc.returncode == 0, proc.stderr
    visible = {k: v for k, v in _files(volume).items() if not k.startswith(".")}
    assert visible == restored
    assert _sh(ROLLBACK_SCRIPT, volume, "r1").returncode == 0
    assert _files(volume) == original


def test_a_failed_extraction_leaves_the_volume_alone(volume: Path) -> None:
    original = _files(volume)
    proc = _sh(SWAP_SCRIPT, volume, "r2", stdin=b"this is not a tar stream" * 100)
    assert proc.returncode != 0
    assert _files(volume) == original


@pytest.mark.parametrize("phase", ["out", "in"])
def test_rollback_after_a_crash_in_the_middle_of_the_swap(volume: Path, phase: str) -> None:
    original = _files(volume)
    new, old = volume / ".restore-r3", volume / ".before-r3"
    new.mkdir()
    old.mkdir()
    (new / "a.wav").write_bytes(b"restored a")
    (new / "z.wav").write_bytes(b"restored z")
    (volume / "b.wav").rename(old / "b.wav")  # half the old files moved out
    if phase == "in":
        for name in ("a.wav", "-looks-like-an-option.wav"):
            (volume / name).rename(old / name)
        (new / "z.wav").rename(volume / "z.wav")  # half the restored files moved in
    (volume / ".phase-r3").write_text(phase + "\n")

    proc = _sh(ROLLBACK_SCRIPT, volume, "r3")
    assert proc.returncode == 0, proc.stderr
    assert _files(volume) == original
