"""Shared helpers for the benchmark scripts: timing commands and describing the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """One line naming the CPU, core count and Python, to print next to every result."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def time_command(
    argv: Sequence[str], runs: int, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> list[float]:
    """Wall-clock seconds of `runs` executions; a failing command aborts the benchmark."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return samples


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)
