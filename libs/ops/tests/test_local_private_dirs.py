"""The local runtime's state is not world-readable: data, logs and recordings directories
lose group and other access (existing ones too), and what the services write under
supervisord is private by its umask."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

from ops import env as env_files
from ops.environment import Environment
from ops.runtimes import local
from ops.runtimes.local.supervisor import Layout, Program, Supervisor, render_config


def _others_may_read(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH))


def test_data_logs_and_recordings_directories_are_private(scratch_root: Path) -> None:
    env = Environment.parse("dev")
    env_files.setup(env)
    values = env.values()
    media = env.path(values["MEDIA_DIR"])
    media.mkdir(parents=True)
    media.chmod(0o755)  # as an older release left it
    (env.data_dir / "logs").mkdir(mode=0o755)
    paths = local.make_private(env, values)
    assert {env.data_dir, env.data_dir / "logs", media} <= set(paths)
    for path in paths:
        assert path.is_dir() and not _others_may_read(path), (path, oct(path.stat().st_mode))
    # Traversal a root run grants the Postgres user on the parents survives.
    env.data_dir.chmod(0o701)
    local.make_private(env, values)
    assert env.data_dir.stat().st_mode & 0o777 == 0o701


def test_what_a_service_writes_under_supervisord_is_private(scratch_root: Path) -> None:
    env = Environment.parse("dev")
    env_files.setup(env)
    local.make_private(env, env.values())
    recording = env.path(env.values()["MEDIA_DIR"]) / "meeting.wav"
    writer = Program(
        "backend",
        [sys.executable, "-c", f"open({str(recording)!r}, 'w').write('x'); "
         "import time; time.sleep(600)"],
        startsecs=0,
    )  # fmt: skip
    layout = Layout(env.data_dir)
    layout.conf.write_text(render_config(layout, "mi-umask-test", [writer]))
    sup = Supervisor(layout)
    sup.start(local.process_env(env, env.values()))
    try:
        sup.start_program("backend")
        deadline = time.monotonic() + 20
        while not recording.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recording.stat().st_mode & 0o777 == 0o600
        assert not _others_may_read(layout.logs / "supervisord.log")
        assert not _others_may_read(layout.log_of("backend"))
    finally:
        sup.shutdown()
