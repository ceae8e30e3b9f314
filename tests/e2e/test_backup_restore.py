"""`inv backup` / `inv backup.restore` on a whole running local stack, used like an operator.

A scratch checkout gets its own free ports (so it can run next to a developer's dev stack),
then `inv up`; meetings go through the real API and pipeline; the backup is verified with a
drill; the data changes; the restore runs while a client holds a database connection open,
stops and restarts backend and worker, and the stack is healthy on exactly the backed-up data.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from mi_testing import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def checkout(make_checkout) -> Path:
    return make_checkout("backup-checkout")


@pytest.fixture(scope="module")
def inv(make_inv, checkout: Path):
    return make_inv(checkout, default_timeout=300)


def _values(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )


@pytest.fixture(scope="module")
def stack(inv, checkout: Path) -> Iterator[dict[str, str]]:
    result = inv("env.setup", "--env", "dev")
    assert result.returncode == 0, result.stderr
    env_file = checkout / ".env.dev"
    lines = []
    for line in env_file.read_text().splitlines():
        key = line.split("=", 1)[0]
        if key.endswith("_PORT"):
            line = f"{key}={free_port()}"
        lines.append(line)
    env_file.write_text("\n".join(lines) + "\n")
    up = inv("up", "--env", "dev", "--runtime", "local", "--timeout", "240")
    try:
        assert up.returncode == 0, f"inv up failed:\n{up.stdout}\n{up.stderr}"
        values = _values(env_file)
        values["url"] = f"http://{values['BACKEND_HOST']}:{values['BACKEND_PORT']}"
        # As the services connect: the app role (the restore, as the owner, ends its sessions).
        values["db"] = (
            f"postgresql://{values['POSTGRES_APP_USER']}:{values['POSTGRES_APP_PASSWORD']}@"
            f"{values['POSTGRES_HOST']}:{values['POSTGRES_PORT']}/{values['POSTGRES_DB']}"
        )
        values["superuser_db"] = (
            f"postgresql://{values['POSTGRES_USER']}:{values['POSTGRES_PASSWORD']}@"
            f"{values['POSTGRES_HOST']}:{values['POSTGRES_PORT']}/{values['POSTGRES_DB']}"
        )
        values["media"] = str(checkout / ".data" / "dev" / "media")
        yield values
    finally:
        inv("down", "--env", "dev")


def _wav(seed: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes((seed * 7 + i) % 256 for i in range(16_000)))
    return buffer.getvalue()


def _client(stack: dict[str, str]) -> httpx.Client:
    headers = {"Authorization": f"Bearer {stack['API_TOKEN']}"}
    return httpx.Client(base_url=stack["url"], headers=headers, timeout=30)


def _upload(client: httpx.Client, title: str, seed: int) -> str:
    files = {"file": ("m.wav", _wav(seed), "audio/wav")}
    response = client.post("/api/v1/meetings", files=files, data={"title": title})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _settle(client: httpx.Client, timeout: float = 180) -> None:
    """Wait until the worker has finished with every meeting (rows stop changing)."""
    deadline = time.monotonic() + timeout
    while True:
        items = client.get("/api/v1/meetings", params={"limit": 100}).json()["items"]
        if all(m["status"] in {"done", "failed"} for m in items):
            return
        assert time.monotonic() < deadline, items
        time.sleep(0.5)


def _state(stack: dict[str, str]) -> dict[str, Any]:
    with psycopg.connect(stack["db"]) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        rows = {
            t: conn.execute(
                "SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]')"  # noqa: S608
                f" FROM public.{t} AS x"
            ).fetchone()[0]  # type: ignore[index]
            for t in tables
        }
    media = Path(stack["media"])
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in media.iterdir()}
    return {"rows": rows, "media": files}


def test_backup_and_restore_a_running_stack(stack, inv) -> None:
    with _client(stack) as client:
        ids = [_upload(client, f"meeting {n}", n) for n in range(3)]
        _settle(client)
    before = _state(stack)
    assert len(before["rows"]["meetings"]) == 3 and len(before["media"]) == 3

    made = inv("backup", "--env", "dev")
    assert made.returncode == 0, made.stderr
    path = made.stdout.split("backup: ", 1)[1].split(" (", 1)[0]
    assert Path(path).is_file() and "/backups/dev/mi-dev-" in path

    drill = inv("backup.verify", path, "--drill")
    assert drill.returncode == 0, drill.stderr
    assert "scratch dropped" in drill.stdout
    listed = inv("backup.list", "--env", "dev", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["path"] == path and row["verified"] == "drilled" and row["media"] == 3
    table = inv("backup.list", "--env", "dev")
    assert Path(path).name in table.stdout and "drilled" in table.stdout

    with _client(stack) as client:
        assert client.delete(f"/api/v1/meetings/{ids[0]}").status_code == 204
        _upload(client, "after the backup", 9)
        _settle(client)
    assert _state(stack) != before

    refused = inv("backup.restore", "--env", "dev", "--from", path)
    assert refused.returncode != 0 and "refusing without confirmation" in refused.stderr

    # A superuser's open session: the owner role may not end it, so the restore says so and
    # changes nothing.
    with psycopg.connect(stack["superuser_db"]):
        blocked = inv("backup.restore", "--env", "dev", "--from", path, "--yes")
    assert blocked.returncode != 0, blocked.stderr
    assert "a superuser (" in blocked.stderr and "rolled back" in blocked.stderr
    assert _state(stack) != before

    holder = psycopg.connect(stack["db"])  # a client that keeps its connection open
    try:
        restored = inv("backup.restore", "--env", "dev", "--from", path, "--yes")
        assert restored.returncode == 0, f"{restored.stdout}\n{restored.stderr}"
        assert "stopped backend, worker (" in restored.stdout
        assert "started backend, worker again: healthy (" in restored.stdout
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
    finally:
        holder.close()

    assert _state(stack) == before
    health = inv("health", "--env", "dev", "--wait", "30")
    assert health.returncode == 0, health.stdout
    with _client(stack) as client:
        titles = sorted(m["title"] for m in client.get("/api/v1/meetings").json()["items"])
        assert titles == ["meeting 0", "meeting 1", "meeting 2"]
        # The restored stack takes new work: upload, process, delete.
        new = _upload(client, "after the restore", 11)
        _settle(client)
        assert client.delete(f"/api/v1/meetings/{new}").status_code == 204
