"""Multiprocess metrics: processes write files, a scrape sums them, killed processes' live
gauges are dropped while their counters stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import prometheus_client  # noqa: F401 - imported at collection: this process is single-process
import pytest

from common import multiprocess

CHILD = """
import sys, time
from prometheus_client import Counter, Gauge
done = Counter("unit_jobs", "jobs")
busy = Gauge("unit_busy", "busy", multiprocess_mode="livesum")
done.inc(int(sys.argv[1]))
busy.set(1)
print("ready", flush=True)
time.sleep(60)
"""


def _sample(registry, name: str) -> float:
    return sum(
        sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == name
    )


@pytest.fixture
def metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "metrics"
    monkeypatch.setenv(multiprocess.ENV, str(directory))
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"a previous run's file")
    # In a fresh process, as a service's launcher runs it (this one imported prometheus_client).
    prepared = subprocess.run(
        [
            sys.executable,
            "-c",
            "from common import multiprocess; print(multiprocess.prepare('u', 0))",
        ],
        env={**os.environ, multiprocess.ENV: str(directory)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert prepared.stdout.strip() == str(directory)
    assert not list(directory.iterdir())  # cleared at start
    return directory


def test_counters_add_up_and_killed_processes_stop_counting_as_busy(metrics_dir: Path) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(jobs)],
            env={**os.environ, multiprocess.ENV: str(metrics_dir)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for jobs in (2, 5)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        registry = multiprocess.registry()
        assert _sample(registry, "unit_jobs_total") == 7
        assert _sample(registry, "unit_busy") == 2

        children[0].send_signal(signal.SIGKILL)  # no exit handler runs
        children[0].wait(10)
        assert multiprocess.sweep_dead() == [children[0].pid]
        registry = multiprocess.registry()
        assert _sample(registry, "unit_busy") == 1
        assert _sample(registry, "unit_jobs_total") == 7  # what it did still counts
    finally:
        for child in children:
            child.kill()
            child.wait(10)


def test_prepare_refuses_once_single_process_metrics_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(multiprocess.ENV, raising=False)
    with pytest.raises(RuntimeError, match="before importing"):
        multiprocess.prepare("unit", 0)
