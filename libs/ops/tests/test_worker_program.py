"""The local runtime stops the worker the graceful way: SIGTERM to its main process alone,
for longer than its task time limit, SIGKILL to the whole group only after that."""

from __future__ import annotations

from pathlib import Path

from ops.env import schema
from ops.runtimes.local import worker_program
from ops.runtimes.local.supervisor import Layout, render_config


def section(config: str, name: str) -> dict[str, str]:
    lines = config.split(f"[program:{name}]\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return dict(line.split(" = ", 1) for line in lines)


def test_a_stop_lets_the_longest_task_finish(tmp_path: Path) -> None:
    # The worker's own default (its settings, reached through the mi.settings entry point).
    default_limit = schema.tuning_keys()["WORKER_TIME_LIMIT"].field.default
    assert worker_program({}).stopwaitsecs > default_limit
    assert worker_program({"WORKER_TIME_LIMIT": "100"}).stopwaitsecs == 160

    worker = section(render_config(Layout(tmp_path), "mi-test", [worker_program({})]), "worker")
    assert worker["stopsignal"] == "TERM"
    assert worker["stopasgroup"] == "false"  # pool children signalled directly die mid-task
    assert worker["killasgroup"] == "true"  # but a kill leaves no orphan
    assert int(worker["stopwaitsecs"]) > default_limit
