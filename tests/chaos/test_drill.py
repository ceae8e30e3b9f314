"""30 spoken meetings through `inv up --env dev` (local runtime) while worker, whisper, llm,
backend, Redis and Postgres are SIGKILLed in turn, each brought back by the runtime's
supervisord: every meeting ends done, none is stored twice, none is stuck.

The same submission schedule runs once calm and once under the kills, on the same stack; a
meeting's extra delay is its turnaround (upload to done, the server's clock) under chaos minus
that of the meeting submitted at the same moment of the calm round. The figures go to
MI_CHAOS_REPORT (benchmarks/results/chaos.json in the nox session).

Loopback only, on free ports (a developer's own dev stack keeps its ports), pocketsphinx and
the extractive llm (no model download), short clips and short worker timings, so the drill
stays within a few minutes on two cores.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_stack import STACK_SETTINGS, Stack, machine

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(600)]

MEETINGS = 30
SUBMIT_EVERY_S = 1.0
KILL_ORDER = ("worker", "whisper", "llm", "backend", "redis", "postgres")
SETTLE_S = 4.0  # after a restarted service answers again, before the next kill
SENTENCES = (
    ("Alice will send the budget report by Friday.", ("budget", "report")),
    ("Bob will review the design document next week.", ("review", "design")),
    ("Carol will book the meeting room for Monday.", ("carol", "meeting", "room", "monday")),
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, tuple[str, ...]]]:
    from mi_testing import speech

    folder = tmp_path_factory.mktemp("clips")
    return [
        (speech.speak(text, folder / f"clip{i}.wav"), words)
        for i, (text, words) in enumerate(SENTENCES)
    ]


@dataclass
class Round:
    name: str
    ids: dict[int, str] = field(default_factory=dict)
    upload_attempts: int = 0
    kills: list[dict[str, Any]] = field(default_factory=list)


class NotKnownYetError(Exception):
    """The API cannot say yet (it is restarting, or its database is)."""


def _find_by_title(client: httpx.Client, title: str) -> str | None:
    reply = client.get("/api/v1/meetings", params={"limit": 100})
    if reply.status_code != 200:
        raise NotKnownYetError(reply.text)
    return next((m["id"] for m in reply.json()["items"] if m["title"] == title), None)


def _submit(stack: Stack, run: Round, index: int, clip: Path, deadline: float) -> None:
    """Upload like a careful client: retry while the stack restarts; after an answer that
    never came, look the title up first, so a meeting is never uploaded twice."""
    title = f"{run.name}-{index:02d}"
    uncertain = False
    with stack.client() as client:
        while time.monotonic() < deadline:
            run.upload_attempts += 1
            try:
                if uncertain and (found := _find_by_title(client, title)):
                    run.ids[index] = found
                    return
                with clip.open("rb") as fh:
                    reply = client.post(
                        "/api/v1/meetings", files={"file": (clip.name, fh)}, data={"title": title}
                    )
                if reply.status_code == 202:
                    run.ids[index] = reply.json()["id"]
                    return
                # 503: Redis or Postgres down, nothing stored (the API says so): try again.
                assert reply.status_code in {502, 503}, reply.text
            except httpx.TransportError:
                uncertain = True  # the backend may have stored it before it went away
            except NotKnownYetError:
                pass  # ask again before uploading
            time.sleep(0.5)
    pytest.fail(f"could not upload {title} within the drill's time")


def _submit_all(
    stack: Stack, run: Round, clips: list[tuple[Path, tuple[str, ...]]], deadline: float
) -> None:
    threads = []
    for index in range(MEETINGS):
        clip = clips[index % len(clips)][0]
        thread = threading.Thread(target=_submit, args=(stack, run, index, clip, deadline))
        thread.start()
        threads.append(thread)
        time.sleep(SUBMIT_EVERY_S)
    for thread in threads:
        thread.join()


def _kill_in_turn(stack: Stack, run: Round, deadline: float) -> None:
    """SIGKILL each service's whole process group (an OOM kill, a crashed host process) and
    wait for supervisord to bring it back."""
    for name in KILL_ORDER:
        pid = stack.pid(name)
        assert pid is not None, f"{name} is not running before its kill"
        killed_at = time.monotonic()
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        while stack.pid(name) in {None, pid}:
            if time.monotonic() > deadline:
                pytest.fail(f"supervisord did not restart {name}:\n{stack.log(name)[-2000:]}")
            time.sleep(0.1)
        run.kills.append({"service": name, "back_after_s": round(time.monotonic() - killed_at, 2)})
        time.sleep(SETTLE_S)


def _wait_finished(stack: Stack, run: Round, deadline: float) -> dict[int, dict[str, Any]]:
    finished: dict[int, dict[str, Any]] = {}
    with stack.client() as client:
        while len(finished) < len(run.ids):
            for index, meeting_id in run.ids.items():
                if index in finished:
                    continue
                try:
                    reply = client.get(f"/api/v1/meetings/{meeting_id}")
                except httpx.TransportError:
                    break
                if reply.status_code == 200 and reply.json()["status"] in {"done", "failed"}:
                    finished[index] = reply.json()
            if time.monotonic() > deadline:
                stuck = sorted(set(run.ids) - set(finished))
                pytest.fail(
                    f"{run.name}: meetings {stuck} not finished in time\n"
                    f"--- worker log ---\n{stack.log('worker')[-4000:]}"
                )
            time.sleep(0.5)
    return finished


def _turnaround(meeting: dict[str, Any]) -> float:
    created = datetime.fromisoformat(meeting["created_at"])
    completed = datetime.fromisoformat(meeting["completed_at"])
    return (completed - created).total_seconds()


def _round(
    stack: Stack, clips: list[tuple[Path, tuple[str, ...]]], name: str, *, chaos: bool
) -> tuple[Round, dict[int, dict[str, Any]]]:
    run = Round(name)
    deadline = time.monotonic() + 240
    killer = threading.Thread(target=_kill_in_turn, args=(stack, run, deadline))
    if chaos:
        killer.start()
    _submit_all(stack, run, clips, deadline)
    if chaos:
        killer.join()
    return run, _wait_finished(stack, run, deadline)


def _check(stack: Stack, run: Round, finished: dict[int, dict[str, Any]]) -> None:
    for index, meeting in finished.items():
        assert meeting["status"] == "done", f"{run.name}-{index:02d}: {meeting['error']}"
        heard = clips_words(index)
        text = meeting["transcript"]["text"].lower()
        assert any(word in text for word in heard), (index, text)
        assert meeting["summary"], meeting
    # Once each: as many meetings as were meant, one transcript and one summary apiece.
    rows = _sql(
        stack,
        "SELECT count(*), count(DISTINCT m.id), count(t.id), count(s.id) FROM meetings m "
        "LEFT JOIN transcripts t ON t.meeting_id = m.id "
        "LEFT JOIN summaries s ON s.meeting_id = m.id WHERE m.title LIKE %s",
        f"{run.name}-%",
    )
    assert rows == [str(MEETINGS)] * 4, rows


def clips_words(index: int) -> tuple[str, ...]:
    return SENTENCES[index % len(SENTENCES)][1]


def _sql(stack: Stack, query: str, pattern: str) -> list[str]:
    import psycopg

    from common.database import libpq_url

    url = stack.values["DATABASE_URL"]
    for key, value in stack.values.items():
        url = url.replace(f"${{{key}}}", value)
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(query, (pattern,)).fetchone()
    assert row is not None
    return [str(v) for v in row]


def test_every_meeting_ends_done_once_while_services_are_killed(
    stack: Stack, clips: list[tuple[Path, tuple[str, ...]]]
) -> None:
    started = time.monotonic()
    calm, calm_done = _round(stack, clips, "calm", chaos=False)
    _check(stack, calm, calm_done)
    chaos, chaos_done = _round(stack, clips, "chaos", chaos=True)
    _check(stack, chaos, chaos_done)
    assert [k["service"] for k in chaos.kills] == list(KILL_ORDER)

    calm_s = {i: _turnaround(m) for i, m in calm_done.items()}
    chaos_s = {i: _turnaround(m) for i, m in chaos_done.items()}
    extra = {i: chaos_s[i] - calm_s[i] for i in chaos_s}
    slowest = max(chaos_s, key=lambda i: chaos_s[i])
    log = stack.log("worker")
    report = {
        "meetings_per_round": MEETINGS,
        "killed_in_turn": chaos.kills,
        "all_done": True,
        "stored_once": True,
        "slowest_meeting": {
            "index": slowest,
            "turnaround_s": round(chaos_s[slowest], 2),
            "calm_turnaround_s": round(calm_s[slowest], 2),
            "extra_delay_s": round(extra[slowest], 2),
        },
        "largest_extra_delay_s": round(max(extra.values()), 2),
        "median_turnaround_s": {
            "calm": round(statistics.median(calm_s.values()), 2),
            "chaos": round(statistics.median(chaos_s.values()), 2),
        },
        "upload_attempts": {"calm": calm.upload_attempts, "chaos": chaos.upload_attempts},
        "recovered_by_sweeper": log.count("queued again (recovery"),
        "redelivered_steps": log.count("delivered again ("),
        "drill_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "settings": STACK_SETTINGS,
    }
    target = os.environ.get("MI_CHAOS_REPORT")
    if target:
        Path(target).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))  # noqa: T201 - the figures, in the session's output
