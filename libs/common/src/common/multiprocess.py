"""prometheus_client's multiprocess mode, for services whose work runs in several processes.

A uvicorn server with BACKEND_WORKERS > 1 and a Celery prefork worker spread their requests or
tasks over child processes. Each child keeps its own counters, so a scrape that reaches one of
them would see a fraction of the truth. In multiprocess mode every process writes its values to
mmapped files in one directory, and `/metrics` sums them up (per metric type: counters and
histograms add up, each gauge says how in its `multiprocess_mode`).

The mode is chosen when prometheus_client is first imported (it reads PROMETHEUS_MULTIPROC_DIR
then), so `prepare()` must run in the parent before that import: before uvicorn spawns or
Celery forks its children. This module therefore imports prometheus_client only inside its
functions.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

ENV = "PROMETHEUS_MULTIPROC_DIR"
# Files of "live" gauges (livesum, liveall, livemax, ...) carry the pid of their process.
_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def active() -> bool:
    return bool(os.environ.get(ENV))


def directory() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def prepare(service: str, instance: int | str) -> Path:
    """Use (and empty) this process tree's metrics directory; returns it.

    An operator's PROMETHEUS_MULTIPROC_DIR wins; otherwise one directory per service and
    port under the temp dir, so a restart finds and clears the files of its predecessor
    (stale counters would add a dead run's totals to the new one's).
    """
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError(
            "prometheus_client was imported before multiprocess mode was set up: call "
            "common.multiprocess.prepare() before importing any module that defines metrics"
        )
    chosen = directory() or Path(tempfile.gettempdir()) / "mi-metrics" / f"{service}-{instance}"
    chosen.mkdir(parents=True, exist_ok=True)
    for stale in chosen.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[ENV] = str(chosen)
    return chosen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def mark_dead(pid: int) -> None:
    """Drop a finished process's live gauges (its counters stay: totals must not go down)."""
    path = directory()
    if path is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(path))


def sweep_dead() -> list[int]:
    """mark_dead() for every process that left live gauges and is gone (killed, crashed).

    Graceful exits call mark_dead() themselves; a SIGKILLed child cannot, and its in-flight
    gauge would otherwise stay up forever.
    """
    path = directory()
    if path is None:
        return []
    gone = set()
    for file in path.glob("gauge_live*.db"):
        match = _LIVE_FILE.match(file.name)
        if match and not _alive(int(match.group(1))):
            gone.add(int(match.group(1)))
    for pid in gone:
        mark_dead(pid)
    return sorted(gone)


def registry() -> CollectorRegistry:
    """A fresh registry that reads every process's files (prometheus_client's recipe)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    sweep_dead()
    fresh = CollectorRegistry()
    MultiProcessCollector(fresh)
    return fresh
