"""One meeting, one trace: upload (backend) -> Celery messages -> worker tasks -> whisper
(gRPC) -> llm (HTTP), every service a real process exporting over OTLP/gRPC to a real
receiver on loopback. And a collector that is wrong or gone never slows a request."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mi_testing import ServiceProcess, free_port, subprocess_env
from mi_testing.otlp import Blackhole, OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.observability

TOKEN = "tracing-test-token-0123456789"
StartWorker = Callable[..., ServiceProcess]
# Export every 100 ms instead of every 5 s: the test waits for the spans.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


def _serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


class Stack:
    """whisper, llm and backend as `python -m ...` processes with one environment."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.processes: list[ServiceProcess] = []

    def start(self, argv: list[str], name: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(
            [sys.executable, *argv],
            subprocess_env(**{**self.env, **env}),
            self.tmp_path / f"{name}.log",
        ).start()
        self.processes.append(process)
        return process

    def whisper(self) -> str:
        target = f"127.0.0.1:{free_port()}"
        process = self.start(
            ["-m", "whisper_service"],
            "whisper",
            WHISPER_HOST="127.0.0.1",
            WHISPER_PORT=target.rsplit(":", 1)[1],
            WHISPER_METRICS_PORT=str(free_port()),
            WHISPER_ENGINE="pocketsphinx",
        )
        process.wait_until(lambda: _serving(target), timeout=120, what="whisper SERVING")
        return target

    def llm(self) -> str:
        port = free_port()
        process = self.start(
            ["-m", "llm_service"],
            "llm",
            LLM_HOST="127.0.0.1",
            LLM_PORT=str(port),
            LLM_ENGINE="extractive",
        )
        url = f"http://127.0.0.1:{port}"
        process.wait_until(lambda: _ok(f"{url}/health"), timeout=60, what="llm /health")
        return url

    def backend(self, **env: str) -> str:
        port = free_port()
        process = self.start(
            ["-m", "backend"],
            "backend",
            BACKEND_HOST="127.0.0.1",
            BACKEND_PORT=str(port),
            API_TOKEN=TOKEN,
            **env,
        )
        url = f"http://127.0.0.1:{port}"
        process.wait_until(lambda: _ok(f"{url}/health"), timeout=60, what="backend /health")
        return url

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def stack(tmp_path: Path, database_url: str, redis_url: str, media_dir: Path) -> Iterator[Stack]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_DIR": str(media_dir),
        "LOG_JSON": "true",
        "APP_ENV": "dev",
        **FAST_EXPORT,
    }
    running = Stack(tmp_path, env)
    try:
        yield running
    finally:
        running.stop()


def _descends_from(span: ReceivedSpan, root: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> bool:
    seen = set()
    while span.span_id != root.span_id:
        if span.parent_id not in by_id or span.span_id in seen:
            return False
        seen.add(span.span_id)
        span = by_id[span.parent_id]
    return True


def test_one_meeting_is_one_trace_across_the_four_services(
    stack: Stack,
    otlp_receiver: OtlpReceiver,
    start_worker: StartWorker,
    spoken_wav: Path,
) -> None:
    stack.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_receiver.endpoint
    whisper, llm = stack.whisper(), stack.llm()
    api = stack.backend(WHISPER_URL=whisper, LLM_URL=llm)
    worker = start_worker(
        "--concurrency",
        "1",
        WHISPER_URL=whisper,
        LLM_URL=llm,
        LOG_JSON="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
        **FAST_EXPORT,
    )

    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        with spoken_wav.open("rb") as audio:
            reply = http.post("/api/v1/meetings", files={"file": ("talk.wav", audio)})
        assert reply.status_code == 202, reply.text
        meeting_id = reply.json()["id"]
        deadline = time.monotonic() + 120
        while (status := http.get(f"/api/v1/meetings/{meeting_id}").json()["status"]) not in {
            "done",
            "failed",
        }:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.2)
    assert status == "done"

    def upload_span() -> ReceivedSpan | None:
        return next(
            (
                s
                for s in otlp_receiver.spans
                if s.service == "backend" and s.name == "POST /api/v1/meetings" and not s.parent_id
            ),
            None,
        )

    otlp_receiver.wait_for(upload_span, timeout=30, what="the upload's span")
    root = upload_span()
    assert root is not None

    # Until the chain's last step has exported its own span: the meeting is done before the
    # embedding step runs, and a child span can arrive a batch ahead of its parent.
    def complete() -> bool:
        names = {s.name for s in otlp_receiver.trace(root.trace_id)}
        return {"run/meetings.embed", "POST /v1/analyze"} <= names and any(
            "Transcriber" in n for n in names
        )

    otlp_receiver.wait_for(complete, timeout=30, what="the whole pipeline's spans")
    spans = otlp_receiver.trace(root.trace_id)
    by_id = {s.span_id: s for s in spans}
    services = {s.service for s in spans}
    assert {"backend", "worker", "whisper", "llm"} <= services, sorted(services)

    # Connected: one root (the upload), every other span hangs below it.
    assert [s.name for s in spans if not s.parent_id] == ["POST /api/v1/meetings"]
    orphans = [s for s in spans if not _descends_from(s, root, by_id)]
    assert not orphans, [(s.service, s.name) for s in orphans]

    # The hops that make it one trace, each a parent/child pair across processes.
    def named(service: str, name: str) -> ReceivedSpan:
        found = [s for s in spans if s.service == service and s.name == name]
        assert found, (service, name, sorted({(s.service, s.name) for s in spans}))
        return found[0]

    publish = named("backend", "apply_async/meetings.process")
    assert named("worker", "run/meetings.process").parent_id == publish.span_id
    for task in ("meetings.transcribe", "meetings.analyze", "meetings.index"):
        run = named("worker", f"run/{task}")
        assert by_id[run.parent_id].name == f"apply_async/{task}"
    whisper_server = next(s for s in spans if s.service == "whisper")
    assert by_id[whisper_server.parent_id].service == "worker"  # the gRPC client span
    assert by_id[whisper_server.parent_id].name == whisper_server.name
    llm_server = named("llm", "POST /v1/analyze")
    assert by_id[llm_server.parent_id].service == "worker"  # the httpx client span
    assert not any(s.name.startswith("GET /health") for s in otlp_receiver.spans)

    # The worker's JSON log lines carry the trace they were written in.
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    transcribed = [line for line in lines if line["msg"].startswith("transcribed meeting")]
    assert transcribed and transcribed[0]["trace_id"] == root.trace_id
    assert transcribed[0]["span_id"] in by_id


@pytest.mark.parametrize("collector", ["gone", "blackhole", "malformed"])
def test_a_wrong_collector_never_slows_or_breaks_a_request(stack: Stack, collector: str) -> None:
    with Blackhole() as hole:
        endpoint = {
            "gone": f"http://127.0.0.1:{free_port()}",
            "blackhole": hole.endpoint,  # accepts, never answers: each export waits it out
            "malformed": "collector:4317",
        }[collector]
        api = stack.backend(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="3")
        slowest = 0.0
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            finish = time.monotonic() + 8  # several export attempts (every 100 ms, 3 s each)
            count = 0
            while time.monotonic() < finish:
                started = time.monotonic()
                reply = http.get("/api/v1/meetings")
                slowest = max(slowest, time.monotonic() - started)
                assert reply.status_code == 200, reply.text
                count += 1
        # An export blocks its thread for up to 3 s; a request that waited on it would show.
        assert slowest < 1.5, (collector, slowest, count)
        log = stack.processes[-1].log()
    if collector == "malformed":
        assert log.count("tracing is off") == 1
        assert "OTEL_EXPORTER_OTLP_ENDPOINT='collector:4317' must look like http://" in log
    else:
        assert log.count("cannot export spans") == 1, log[-3000:]
        assert "requests are not affected" in log
