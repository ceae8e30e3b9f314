"""The stack spread over hosts (network namespaces on this machine, `nox -s scale`):

    data     Postgres, Redis and the object store (rclone's serve s3)
    api      the backend           whisper  speech to text     llm  analysis
    worker1  a worker              worker2  a worker           client  the users

No two hosts share a directory: recordings travel through the object store only. Twenty
meetings go through one worker host and twenty through two, in alternating rounds of ten
(both hosts must share the work; throughput must scale by at least 1.7x where the machine has
the cores for it, see MIN_SPEEDUP), and twenty more while one worker host is killed in
the middle of a transcription: every meeting must end `done`, none transcribed twice.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scale_hosts import Host, Network  # type: ignore[import-not-found]

from mi_testing.objectstore import rclone_binary
from ops import binaries
from ops.runtimes.local import stores

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CLIENT = str(Path(__file__).with_name("client.py"))
PYTHON = sys.executable
MEETINGS = int(os.environ.get("MI_SCALE_MEETINGS", "20"))  # fewer: a quick smoke run
ROUNDS = 2
"""Throughput is measured in rounds of one worker host, then two, each round half a batch:
on a machine other work shares, interleaving spreads that work's noise over both sides."""
MIN_SPEEDUP = float(
    os.environ.get("MI_SCALE_MIN_SPEEDUP", "1.7" if (os.cpu_count() or 1) >= 4 else "0")
)
"""On two cores the second worker host's transcriptions run on the same two cores as the first
one's (pocketsphinx is CPU-bound; whisper, backend and the data host share them too), so the
ceiling there is below 1.7x and a timed bound would only measure the machine's other load:
the figure is recorded in benchmarks/results/scale_drill.json and the README instead."""
BUCKET = "mi-media"
REPORT: dict[str, Any] = {}


def _env(**values: str) -> dict[str, str]:
    # The services read their settings from the environment only; PATH for the tools.
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return {**keep, "LOG_JSON": "false", "LOG_LEVEL": "INFO", **values}


class Stack:
    def __init__(self, network: Network, audio: Path) -> None:
        self.network = network
        self.audio = audio
        self.token = secrets.token_urlsafe(24)
        self.pg_password = secrets.token_urlsafe(16)  # the superuser's: roles and nothing else
        self.roles = {
            "POSTGRES_DB": "meetings",
            "POSTGRES_OWNER_USER": "mi_owner",
            "POSTGRES_OWNER_PASSWORD": secrets.token_urlsafe(16),
            "POSTGRES_APP_USER": "mi_app",
            "POSTGRES_APP_PASSWORD": secrets.token_urlsafe(16),
            "POSTGRES_APP_STATEMENT_TIMEOUT": "30s",
        }
        self.redis_password = secrets.token_urlsafe(16)
        self.s3_key, self.s3_secret = "mi-scale", secrets.token_urlsafe(24)
        for name in ("data", "api", "whisper", "llm", "worker1", "worker2", "client"):
            network.add(name)
        self.hosts = network.hosts
        data = self.hosts["data"].address
        # As deployed: the services as the app role (rows only), migrations as the owner.
        self.owner_url = self._database_url("OWNER", data)
        self.settings = {
            "DATABASE_URL": self._database_url("APP", data),
            "REDIS_URL": f"redis://:{self.redis_password}@{data}:6379/0",
            "MEDIA_STORE": "s3",
            "S3_ENDPOINT_URL": f"http://{data}:9000",
            "S3_BUCKET": BUCKET,
            "S3_ACCESS_KEY_ID": self.s3_key,
            "S3_SECRET_ACCESS_KEY": self.s3_secret,
            "LLM_URL": f"http://{self.hosts['llm'].address}:8001",
        }
        self.api_url = f"http://{self.hosts['api'].address}:8000"

    def _database_url(self, role: str, address: str) -> str:
        user = self.roles[f"POSTGRES_{role}_USER"]
        password = self.roles[f"POSTGRES_{role}_PASSWORD"]
        database = self.roles["POSTGRES_DB"]
        return f"postgresql+psycopg://{user}:{password}@{address}:5432/{database}"

    def host_env(self, host: Host, **extra: str) -> dict[str, str]:
        # Each host's MEDIA_DIR is its own (and stays unused: MEDIA_STORE=s3).
        return _env(**{**self.settings, "MEDIA_DIR": str(host.root / "media"), **extra})

    # --- the data host --------------------------------------------------------------------

    def start_data(self) -> None:
        host = self.hosts["data"]
        pgdata = host.root / "postgres"
        stores.initdb(pgdata, "mi", self.pg_password, fsync=False)
        # initdb admits 127.0.0.1 only; the other hosts connect from the drill's network.
        with (pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all 127.{self.network.net}.0.0/24 scram-sha-256\n")
        postgres = stores.postgres_program(pgdata, host.address, 5432)
        host.start("postgres", list(postgres.command), _env(), user=postgres.user)
        redis = str(binaries.require(binaries.redis_server()))
        host.start(
            "redis",
            [redis, "--bind", host.address, "--port", "6379", "--requirepass",
             self.redis_password, "--save", "", "--appendonly", "no",
             "--dir", str(host.root)],
            _env(),
        )  # fmt: skip
        (host.root / "s3" / BUCKET).mkdir(parents=True)
        host.start(
            "objectstore",
            [rclone_binary(), "serve", "s3", "--addr", f"{host.address}:9000",
             "--auth-key", f"{self.s3_key},{self.s3_secret}", "--config", "",
             str(host.root / "s3")],
            _env(),
        )  # fmt: skip
        # The owner and app roles and the database, made as the local runtime makes them.
        host.run(
            [PYTHON, "-c", "import os; from ops.runtimes.local import stores; "
             "stores.bootstrap_roles(os.environ, 60)"],
            _env(POSTGRES_HOST=host.address, POSTGRES_PORT="5432", POSTGRES_USER="mi",
                 POSTGRES_PASSWORD=self.pg_password, **self.roles),
        )  # fmt: skip

    def start_services(self) -> None:
        api, whisper, llm = self.hosts["api"], self.hosts["whisper"], self.hosts["llm"]
        api.run(
            [PYTHON, "-c", "import os; from meetings.migrations import upgrade; "
             "upgrade(os.environ['DATABASE_URL'])"],
            self.host_env(api, DATABASE_URL=self.owner_url),
        )  # fmt: skip
        # pocketsphinx holds the GIL while it decodes, so threads in one process take turns:
        # the whisper host runs one server process per worker host (as a cluster runs
        # replicas behind a Service), each worker host talking to its own.
        for number in (1, 2):
            whisper.start(
                f"whisper{number}",
                [PYTHON, "-m", "whisper_service"],
                _env(
                    WHISPER_HOST=whisper.address,
                    WHISPER_PORT=str(50050 + number),
                    WHISPER_METRICS_PORT=str(9100 + number),
                    WHISPER_ENGINE="pocketsphinx",
                    WHISPER_WORKERS="1",
                ),
            )
        llm.start(
            "llm",
            [PYTHON, "-m", "llm_service"],
            _env(LLM_HOST=llm.address, LLM_PORT="8001", LLM_ENGINE="extractive"),
        )
        api.start(
            "backend",
            [PYTHON, "-m", "backend"],
            self.host_env(
                api,
                API_TOKEN=self.token,
                BACKEND_HOST=api.address,
                BACKEND_PORT="8000",
                WHISPER_URL=f"{whisper.address}:50051",  # reported by /health/ready only
            ),
        )
        self.client("ready", self.api_url, "120")

    def start_worker(self, name: str) -> Host:
        host = self.hosts[name]
        process = host.start(
            "worker",
            [PYTHON, "-m", "worker", f"--hostname={name}@%h", "--without-mingle",
             "--without-gossip"],
            self.host_env(
                host,
                WHISPER_URL=f"{self.hosts['whisper'].address}:{50050 + int(name[-1])}",
                WORKER_CONCURRENCY="1",
                WORKER_SCRATCH_DIR=str(host.root / "scratch"),
                # Generous limits (a busy shared machine transcribes slowly), and a killed
                # host's unacked task back to the other one within ~80 s.
                WORKER_SOFT_TIME_LIMIT="60",
                WORKER_TIME_LIMIT="70",
                WORKER_VISIBILITY_TIMEOUT="80",
                WORKER_RESTORE_INTERVAL="2",
                WORKER_RETRY_BACKOFF_MAX="5",
            ),
        )  # fmt: skip
        process.wait_until(lambda: " ready." in process.log(), timeout=120, what=f"{name} ready")
        return host

    # --- the users ------------------------------------------------------------------------

    def client(self, *args: str, timeout: float = 600) -> str:
        return self.hosts["client"].run([PYTHON, CLIENT, *args], _env(), timeout=timeout)

    def submit(self, title: str, count: int = MEETINGS) -> list[str]:
        out = self.client("submit", self.api_url, self.token, str(self.audio), str(count), title)
        ids: list[str] = json.loads(out)
        return ids

    def wait(self, ids: list[str], timeout: float = 420) -> dict[str, Any]:
        path = self.hosts["client"].root / f"ids-{ids[0]}.json"
        path.write_text(json.dumps(ids))
        result: dict[str, Any] = json.loads(
            self.client("wait", self.api_url, self.token, str(path), str(timeout),
                        timeout=timeout + 60)
        )  # fmt: skip
        return result

    def batch(self, title: str, count: int) -> tuple[list[str], dict[str, Any], float]:
        """Submit a batch and wait for it; its seconds from first upload to last done."""
        ids = self.submit(title, count)
        result = self.wait(ids)
        return ids, result["meetings"], batch_seconds(result["meetings"])

    def stop_worker(self, name: str) -> None:
        """A warm shutdown (nothing is queued): the host stays, its worker goes."""
        self.hosts[name].processes[-1].stop(timeout=60)

    def rows(self) -> dict[str, int]:
        out = self.hosts["data"].run(
            [PYTHON, "-c", "import os, json, psycopg; from common.database import libpq_url\n"
             "with psycopg.connect(libpq_url(os.environ['DATABASE_URL'])) as c:\n"
             "    print(json.dumps({t: c.execute(f'SELECT count(*) FROM {t}').fetchone()[0]"
             " for t in ('meetings', 'transcripts', 'summaries', 'search_documents')}))"],
            _env(DATABASE_URL=self.settings["DATABASE_URL"]),
        )  # fmt: skip
        counts: dict[str, int] = json.loads(out)
        return counts


def batch_seconds(meetings: dict[str, Any]) -> float:
    """From the first upload to the last meeting done, by the server's clock. (Not from the
    completions alone: a worker takes queued transcriptions before the analyses and indexing
    that finish earlier meetings, so most of a batch completes together at its end.)"""
    from datetime import datetime

    created = min(datetime.fromisoformat(m["created_at"]) for m in meetings.values())
    done = max(datetime.fromisoformat(m["completed_at"]) for m in meetings.values())
    return (done - created).total_seconds()


def transcribed(host: Host) -> list[str]:
    """Meeting ids this host's worker finished transcribing, from its log."""
    log = (host.root / "worker.log").read_text(errors="replace")
    return re.findall(r"transcribed meeting ([0-9a-f-]{36})", log)


def in_flight(host: Host) -> bool:
    """The host's worker has taken a transcription it has not finished."""
    log = (host.root / "worker.log").read_text(errors="replace")
    received = len(re.findall(r"Task meetings\.transcribe\[[^\]]+\] received", log))
    return received > len(transcribed(host))


@pytest.fixture
def stack(spoken_wav: Path) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="mi-scale-"))
    root.chmod(0o755)  # the Postgres server's own user walks into data/postgres
    audio = Path(shutil.copy(spoken_wav, root / "meeting.wav"))
    network = Network(root / "hosts")
    try:
        stack = Stack(network, audio)
        stack.start_data()
        stack.start_services()
        yield stack
    finally:
        logs = {h.name: h.root for h in network.hosts.values()}
        network.close()
        REPORT["logs"] = {name: str(path) for name, path in logs.items()}
        keep = os.environ.get("MI_SCALE_KEEP")
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def test_meetings_survive_a_worker_host_and_two_hosts_scale(stack: Stack) -> None:
    started = time.monotonic()
    one = stack.start_worker("worker1")
    per_round = max(1, MEETINGS // ROUNDS)
    seconds: dict[int, list[float]] = {1: [], 2: []}
    ids_1: list[str] = []
    ids_2: list[str] = []
    done_1: dict[str, Any] = {}
    load = [os.getloadavg()[0]]
    for number in range(ROUNDS):
        if number:
            stack.stop_worker("worker2")
        ids, done, took = stack.batch(f"one worker host, round {number + 1}", per_round)
        ids_1 += ids
        done_1 |= done
        seconds[1].append(took)
        two = stack.start_worker("worker2")
        ids, done, took = stack.batch(f"two worker hosts, round {number + 1}", per_round)
        ids_1 += ids
        ids_2 += ids
        done_1 |= done
        seconds[2].append(took)
        load.append(os.getloadavg()[0])

    ids_3 = stack.submit("a host dies")
    deadline = time.monotonic() + 120
    while not in_flight(one):
        assert time.monotonic() < deadline, "worker1 never took a transcription"
        time.sleep(0.05)
    killed = one.crash()
    recovered = stack.wait(ids_3)
    done_3 = recovered["meetings"]

    everything = {**done_1, **done_3}
    statuses = {meeting_id: body["status"] for meeting_id, body in everything.items()}
    all_ids = [*ids_1, *ids_3]
    assert sorted(statuses) == sorted(all_ids), "some meetings never finished"
    failed = {i: everything[i]["error"] for i, s in statuses.items() if s != "done"}
    assert not failed, failed

    # None twice: one transcription per meeting across both worker hosts, one of each row.
    finished = [*transcribed(one), *transcribed(two)]
    twice = sorted({i for i in finished if finished.count(i) > 1})
    assert not twice, f"transcribed more than once: {twice}"
    assert sorted(finished) == sorted(all_ids)
    # Two worker hosts really shared the two-host rounds' meetings.
    for host in (one, two):
        assert set(transcribed(host)) & set(ids_2), f"{host.name} took none of {ids_2}"
    total = len(all_ids)
    assert stack.rows() == {
        "meetings": total,
        "transcripts": total,
        "summaries": total,
        "search_documents": total,
    }
    # The killed host really was mid-transcription, and the other one picked it up.
    two_log = (two.root / "worker.log").read_text(errors="replace")
    assert "delivered again" in two_log

    # Recordings only ever lived in the bucket: no host's MEDIA_DIR holds one; a worker's
    # download is gone after its transcription (the killed host's in-flight one excepted).
    for host in stack.hosts.values():
        media = host.root / "media"
        assert not media.exists() or not any(media.iterdir()), host.name
    assert list((two.root / "scratch").rglob("*.wav")) == []
    assert len(list((one.root / "scratch").rglob("*.wav"))) <= 1
    stored = list((stack.hosts["data"].root / "s3" / BUCKET).glob("*.wav"))
    assert len(stored) == total

    rate_1 = 60 * per_round * ROUNDS / sum(seconds[1])
    rate_2 = 60 * per_round * ROUNDS / sum(seconds[2])
    speedup = rate_2 / rate_1
    REPORT.update(
        {
            "throughput_meetings": {
                "one_worker_host": per_round * ROUNDS,
                "two": per_round * ROUNDS,
            },
            "audio_seconds_each": round(speech_seconds(stack.audio), 1),
            "one_worker_host_meetings_per_minute": round(rate_1, 1),
            "one_worker_host_round_seconds": [round(x, 1) for x in seconds[1]],
            "two_worker_hosts_meetings_per_minute": round(rate_2, 1),
            "two_worker_hosts_round_seconds": [round(x, 1) for x in seconds[2]],
            "speedup": round(speedup, 2),
            # The machine's 1-minute load average while throughput was measured: other work
            # on it takes CPU from the second worker host's transcriptions too.
            "load_average": [round(x, 1) for x in load],
            "killed_mid_transcription_batch": MEETINGS,
            "host_killed_processes": killed,
            "after_kill_seconds": recovered["seconds"],
            "drill_seconds": round(time.monotonic() - started, 1),
            "machine": machine(),
        }
    )
    write_report()
    assert speedup >= MIN_SPEEDUP, REPORT


def speech_seconds(path: Path) -> float:
    import wave

    with wave.open(str(path)) as reader:
        return reader.getnframes() / reader.getframerate()


def machine() -> str:
    import platform

    cpu = "?"
    with open("/proc/cpuinfo") as info:  # noqa: PTH123
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_report() -> None:
    sys.stdout.write("\nmulti-host drill: " + json.dumps(REPORT, indent=2) + "\n")
    target = os.environ.get("MI_SCALE_REPORT")
    if target:
        Path(target).write_text(json.dumps(REPORT, indent=2) + "\n")
