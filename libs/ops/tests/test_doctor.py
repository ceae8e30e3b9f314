import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.environments import default_ports
from ops import doctor
from ops.environment import Environment
from ops.errors import OpsError


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_fails_and_names_the_key_to_change(busy_port, scratch_root):
    (scratch_root / ".env.dev").write_text(f"BACKEND_PORT={busy_port}\n")

    findings = {f.check: f for f in doctor.check_ports(Environment.parse("dev"))}

    backend = findings["port BACKEND_PORT"]
    assert backend.status == "fail"
    assert str(busy_port) in backend.detail
    assert "BACKEND_PORT" in backend.fix and ".env.dev" in backend.fix


def test_a_malformed_env_file_is_an_error_with_its_line_number(scratch_root):
    (scratch_root / ".env.dev").write_text("API_TOKEN=x\nthis is not a setting\n")
    with pytest.raises(OpsError, match="line 2"):
        doctor.check_ports(Environment.parse("dev"))


def test_python_outside_requires_python_fails():
    assert doctor.check_python((3, 10, 0)).status == "fail"
    assert doctor.check_python((3, 11, 7)).status == "ok"


def test_missing_uv_fails_with_install_hint(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    finding = doctor.check_uv()
    assert finding.status == "fail"
    assert "pip install uv" in finding.fix


def test_no_docker_engine_is_only_a_warning(monkeypatch, tmp_path):
    # A `docker` CLI whose engine is not running, as on a laptop with Docker Desktop stopped.
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    finding = doctor.check_docker()
    assert finding.status == "warn"
    assert "Cannot connect to the Docker daemon" in finding.detail
    assert "local runtime" in finding.detail


def test_unknown_env_is_refused():
    with pytest.raises(OpsError, match="unknown environment 'qa'") as info:
        Environment.parse("qa")
    assert info.value.code == 2


def test_envs_use_distinct_ports():
    ports = [set(default_ports(e).values()) for e in ("dev", "staging", "prod")]
    assert not (ports[0] & ports[1]) and not (ports[1] & ports[2]) and not (ports[0] & ports[2])


def test_inv_doctor_exits_non_zero_when_a_port_is_taken(tmp_path):
    uv_dir = Path(shutil.which("uv") or "/usr/bin/uv").parent
    env = {"PATH": f"{sys.prefix}/bin:{uv_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    repo = doctor.project.root()
    ok = subprocess.run(
        [sys.executable, "-m", "invoke", "doctor", "--env", "staging", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    findings = {f["check"]: f for f in json.loads(ok.stdout)}
    assert {"python", "uv", "git", "docker engine", "disk"} <= findings.keys()
    assert findings["uv"]["status"] == "ok", findings["uv"]

    with socket.socket() as sock:
        staging_backend = default_ports("staging")["BACKEND_PORT"]
        try:
            sock.bind(("127.0.0.1", staging_backend))
        except OSError:
            pytest.skip(f"port {staging_backend} is already in use on this machine")
        sock.listen()
        taken = subprocess.run(
            [sys.executable, "-m", "invoke", "doctor", "--env", "staging"],
            cwd=repo,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    assert taken.returncode == 1
    assert "BACKEND_PORT" in taken.stdout
    assert "1 check(s) failed: port BACKEND_PORT" in taken.stderr


def test_local_runtime_binaries_are_found_in_the_wheels():
    findings = {f.check: f for f in doctor.check_binaries()}
    for name in ("postgres", "initdb", "pg_dump", "pg_restore", "redis-server", "supervisord"):
        assert findings[name].status == "ok", findings[name]
    assert "pgserver wheel" in findings["postgres"].detail
    assert findings["ollama"].status in {"ok", "warn"}, "ollama is optional"


def test_a_missing_server_binary_fails_with_what_installs_it(monkeypatch):
    monkeypatch.setattr(doctor.binaries, "_pgserver_bin", lambda: None)
    monkeypatch.setattr(doctor.binaries, "_debian_postgres_bin", lambda name: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    findings = {f.check: f for f in doctor.check_binaries()}
    assert findings["initdb"].status == "fail"
    assert "pgserver" in findings["initdb"].fix
