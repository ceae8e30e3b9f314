"""Soak: 50 clients for MI_SOAK_MINUTES (2 by default, 10 for the published figures) of mixed
reads, searches and small spoken uploads against `inv up --env dev` (local runtime): not one
error, every uploaded meeting done, no service restarted, and the resident memory of each
service (its whole process tree) grows less than 10 % from a warm-up baseline to the end.

Each client waits a moment between requests, like a person clicking through the app, so the
stack is loaded but not driven past what two cores serve; an upload goes out every few
seconds, taken by whichever client is due. Memory is sampled every few seconds; the baseline
is the median of the samples just after the warm-up (the first fifth of the run: imports,
caches and connection pools filling up are not a leak), the end the median of the last
samples (a median, so one sample taken mid-task or while Postgres runs an autovacuum worker
does not decide alone).

The figures go to MI_SOAK_REPORT (benchmarks/results/soak.json in the nox session).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_stack import STACK_SETTINGS, Stack, machine

MINUTES = float(os.environ.get("MI_SOAK_MINUTES", "2"))
CLIENTS = 50
THINK_S = (0.2, 0.8)  # between one client's requests
UPLOAD_EVERY_S = 5.0
READS = {"list": 0.45, "get": 0.35, "search": 0.20}  # shares of the non-upload requests
REQUEST_TIMEOUT_S = 30.0  # longer than any answer should take: a timeout is an error
SEED_MEETINGS = 6
WARM_UP_SHARE = 0.2
WINDOW_SHARE = 0.1  # the baseline and end windows, each this share of the run
SAMPLE_EVERY_S = 2.0
MAX_GROWTH = 0.10
FINISH_WITHIN_S = 240.0  # after the load, for the last uploads to be done
SERVICES = ("backend", "worker", "whisper", "llm", "postgres", "redis")
SENTENCES = (
    "Alice will send the budget report by Friday.",
    "Bob will review the design document next week.",
    "Carol will book the meeting room for Monday.",
)
QUERIES = ("budget", "design review", '"meeting room"', "report -monday", "friday or monday")

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    # Bringing the stack up and down, seeding, the load, the wait for the last uploads.
    pytest.mark.timeout(int(MINUTES * 60 + 900)),
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    from mi_testing import speech

    folder = tmp_path_factory.mktemp("soak-clips")
    spoken = [speech.speak(text, folder / f"{i}.wav") for i, text in enumerate(SENTENCES)]
    return [wav.read_bytes() for wav in spoken]


# --- memory -----------------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    """`root` and every process below it (the worker's pool, Postgres's backends)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name is in parentheses and may hold spaces: fields count from the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _kib(path: Path, field_name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass  # a process that ended between the listing and the read holds nothing
    return 0


def _memory(root: int) -> dict[str, int]:
    """The tree's resident memory: VmRSS summed (what was asked), and PSS summed (shared
    pages, such as Postgres's shared buffers that every backend maps, counted once)."""
    pids = _tree(root)
    return {
        "rss_kib": sum(_kib(Path(f"/proc/{p}/status"), "VmRSS") for p in pids),
        "pss_kib": sum(_kib(Path(f"/proc/{p}/smaps_rollup"), "Pss") for p in pids),
        "processes": len(pids),
    }


@dataclass
class Sampler:
    pids: dict[str, int]
    samples: list[tuple[float, dict[str, dict[str, int]]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, started: float) -> None:
        while not self.stop.is_set():
            at = time.monotonic() - started
            self.samples.append((at, {name: _memory(pid) for name, pid in self.pids.items()}))
            self.stop.wait(SAMPLE_EVERY_S)

    def window(self, service: str, start_s: float, end_s: float, key: str) -> int:
        values = [s[service][key] for at, s in self.samples if start_s <= at <= end_s]
        assert values, f"no memory sample of {service} between {start_s:.0f}s and {end_s:.0f}s"
        return int(statistics.median(values))


# --- load -------------------------------------------------------------------------------


@dataclass
class Load:
    stop_at: float
    next_upload_at: float
    meeting_ids: list[str]
    uploaded: list[str] = field(default_factory=list)
    upload_count: int = 0
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def _request(client: httpx.AsyncClient, load: Load, kind: str, **kwargs: Any) -> Any:
    method = "POST" if kind == "upload" else "GET"
    started = time.perf_counter()
    try:
        reply = await client.request(method, kwargs.pop("url"), **kwargs)
    except httpx.TransportError as exc:
        load.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
        return None
    elapsed = time.perf_counter() - started
    if not reply.is_success:
        load.errors.append(f"{kind}: {reply.status_code} {reply.text[:300]}")
        return None
    load.latencies_s.setdefault(kind, []).append(elapsed)
    return reply.json()


async def _client(stack: Stack, load: Load, clips: list[bytes], seed: int) -> None:
    rng = random.Random(seed)
    kinds, weights = list(READS), list(READS.values())
    async with httpx.AsyncClient(
        base_url=stack.base, headers=stack.headers, timeout=REQUEST_TIMEOUT_S
    ) as client:
        await asyncio.sleep(rng.uniform(0, THINK_S[1]))  # not all 50 at the same instant
        while (now := time.monotonic()) < load.stop_at:
            if now >= load.next_upload_at:
                load.next_upload_at += UPLOAD_EVERY_S  # this client takes this upload
                load.upload_count += 1
                number = load.upload_count
                wav = clips[number % len(clips)]
                body = await _request(
                    client,
                    load,
                    "upload",
                    url="/api/v1/meetings",
                    files={"file": (f"soak-{number}.wav", wav, "audio/wav")},
                    data={"title": f"soak-{number:04d}"},
                )
                if body is not None:
                    load.uploaded.append(body["id"])
                    load.meeting_ids.append(body["id"])
            else:
                kind = rng.choices(kinds, weights)[0]
                if kind == "list":
                    await _request(client, load, kind, url="/api/v1/meetings")
                elif kind == "get":
                    meeting_id = rng.choice(load.meeting_ids)
                    await _request(client, load, kind, url=f"/api/v1/meetings/{meeting_id}")
                else:
                    query = rng.choice(QUERIES)
                    await _request(client, load, kind, url="/api/v1/search", params={"q": query})
            await asyncio.sleep(rng.uniform(*THINK_S))


async def _soak(stack: Stack, load: Load, clips: list[bytes]) -> None:
    await asyncio.gather(*(_client(stack, load, clips, seed) for seed in range(CLIENTS)))


# --- meetings ---------------------------------------------------------------------------


def _upload(stack: Stack, wav: bytes, title: str) -> str:
    with stack.client() as client:
        files = {"file": ("seed.wav", wav, "audio/wav")}
        reply = client.post("/api/v1/meetings", files=files, data={"title": title})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["id"])


def _wait_done(stack: Stack, ids: list[str], within_s: float) -> float:
    """Seconds until every meeting in `ids` is done; fails on one that failed or is late."""
    started = time.monotonic()
    pending = set(ids)
    with stack.client() as client:
        while pending:
            for meeting_id in sorted(pending):
                reply = client.get(f"/api/v1/meetings/{meeting_id}")
                assert reply.status_code == 200, reply.text
                meeting = reply.json()
                assert meeting["status"] != "failed", f"{meeting_id} failed: {meeting['error']}"
                if meeting["status"] == "done":
                    pending.discard(meeting_id)
            if pending and time.monotonic() - started > within_s:
                pytest.fail(
                    f"{len(pending)} of {len(ids)} meetings not done {within_s:.0f}s after the "
                    f"load\n--- worker log ---\n{stack.log('worker')[-4000:]}"
                )
            time.sleep(1.0)
    return time.monotonic() - started


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_fifty_clients_get_no_error_and_no_service_grows(stack: Stack, clips: list[bytes]) -> None:
    seeded = [_upload(stack, clips[i % len(clips)], f"seed-{i}") for i in range(SEED_MEETINGS)]
    _wait_done(stack, seeded, FINISH_WITHIN_S)

    pids = {name: stack.pid(name) for name in SERVICES}
    assert None not in pids.values(), pids
    duration_s = MINUTES * 60
    started = time.monotonic()
    load = Load(
        stop_at=started + duration_s,
        next_upload_at=started + UPLOAD_EVERY_S,
        meeting_ids=list(seeded),
    )
    sampler = Sampler({name: pid for name, pid in pids.items() if pid is not None})
    sampling = threading.Thread(target=sampler.run, args=(started,), daemon=True)
    sampling.start()
    try:
        asyncio.run(_soak(stack, load, clips))
    finally:
        sampler.stop.set()
        sampling.join()
    load_s = time.monotonic() - started
    finish_s = _wait_done(stack, load.uploaded, FINISH_WITHIN_S)

    # A restart would hide a leak (and is a failure of its own): each service kept its process.
    assert {name: stack.pid(name) for name in SERVICES} == pids, "a service restarted"

    warm = duration_s * WARM_UP_SHARE
    window = duration_s * WINDOW_SHARE
    memory: dict[str, dict[str, Any]] = {}
    for name in SERVICES:
        figures: dict[str, Any] = {}
        for key in ("rss_kib", "pss_kib"):
            base = sampler.window(name, warm, warm + window, key)
            end = sampler.window(name, duration_s - window, duration_s, key)
            figures[key.replace("_kib", "_mib")] = {
                "baseline": round(base / 1024, 1),
                "end": round(end / 1024, 1),
                "growth_pct": round(100 * (end - base) / base, 1),
            }
        figures["processes_at_end"] = sampler.samples[-1][1][name]["processes"]
        memory[name] = figures

    report = {
        "clients": CLIENTS,
        "minutes": MINUTES,
        "load_seconds": round(load_s, 1),
        "requests": sum(len(v) for v in load.latencies_s.values()) + len(load.errors),
        "requests_per_second": round(
            (sum(len(v) for v in load.latencies_s.values()) + len(load.errors)) / load_s, 1
        ),
        "errors": len(load.errors),
        "first_errors": load.errors[:5],
        "latency_ms": {
            kind: {
                "count": len(values),
                "p50": round(1000 * statistics.median(values), 1),
                "p99": round(1000 * _percentile(values, 0.99), 1),
                "max": round(1000 * max(values), 1),
            }
            for kind, values in sorted(load.latencies_s.items())
        },
        "uploads": len(load.uploaded),
        "uploads_done": True,  # asserted by _wait_done above
        "last_upload_done_after_load_s": round(finish_s, 1),
        "memory": memory,
        "memory_windows_s": {
            "baseline": [round(warm), round(warm + window)],
            "end": [round(duration_s - window), round(duration_s)],
        },
        "memory_samples": len(sampler.samples),
        "think_s": list(THINK_S),
        "upload_every_s": UPLOAD_EVERY_S,
        "machine": machine(),
        "settings": STACK_SETTINGS,
    }
    target = os.environ.get("MI_SOAK_REPORT")
    if target:
        Path(target).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))  # noqa: T201 - the figures, in the session's output

    assert not load.errors, f"{len(load.errors)} errors; the first: {load.errors[:5]}"
    for kind in ("list", "get", "search", "upload"):
        assert load.latencies_s.get(kind), f"no {kind} request was made"
    grown = {
        name: figures["rss_mib"]["growth_pct"]
        for name, figures in memory.items()
        if figures["rss_mib"]["growth_pct"] >= 100 * MAX_GROWTH
    }
    assert not grown, f"resident memory grew by {MAX_GROWTH:.0%} or more: {grown} (% growth)"
