"""`inv up --monitoring` on the local runtime: what it runs and the Prometheus config it writes.

The running stack (Flower answering, Prometheus scraping every service, a meeting's stages on
its graphs) is proven in tests/e2e/test_local_stack.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ops import doctor
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes import local
from ops.runtimes.local import monitoring


@pytest.fixture
def values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(Path(__file__).resolve().parents[3])  # the repository root
    return Environment.parse("staging").settings()


def test_the_prometheus_config_passes_promtool_with_the_alert_rules(
    values: dict[str, str], tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed: `apt-get install prometheus` (CI installs it)")
    config = tmp_path / "prometheus.yml"
    config.write_text(monitoring.prometheus_config(values))
    checked = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Every rule file of the compose stack is loaded, not an empty glob.
    rules = sorted(Path("infra/prometheus/rules").glob("*.yml"))
    assert rules
    for rule_file in rules:
        assert rule_file.name in checked.stdout + checked.stderr


def test_each_service_is_scraped_on_its_own_environment_port(values: dict[str, str]) -> None:
    parsed = json.loads(monitoring.prometheus_config(values).split("\n", 1)[1])
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in parsed["scrape_configs"]
    }
    # staging's ports, not dev's built-in defaults: both stacks can be watched side by side.
    assert targets == {
        "backend": "127.0.0.1:8100",
        "llm": "127.0.0.1:8101",
        "whisper": "127.0.0.1:9201",
        "worker": "127.0.0.1:9202",
        "prometheus": "127.0.0.1:9190",
    }


def test_monitoring_programs_and_their_ports_only_when_asked(
    values: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Environment.parse("staging")
    plain = [p.name for p in local.programs(env, values)]
    assert "flower" not in plain and "prometheus" not in plain
    assert not {"FLOWER_PORT", "PROMETHEUS_PORT"} & set(local.ports(values, False, plain))

    watched = local.programs(env, values, with_monitoring=True)
    by_name = {p.name: p for p in watched}
    assert "--port=5655" in by_name["flower"].command
    # Watchers stop before the worker they watch.
    assert by_name["flower"].priority > by_name["worker"].priority
    names = list(by_name)
    expected = {"FLOWER_PORT"} | ({"PROMETHEUS_PORT"} if "prometheus" in names else set())
    assert expected <= set(local.ports(values, False, names))
    if shutil.which("prometheus"):
        command = by_name["prometheus"].command
        assert f"--web.listen-address=127.0.0.1:{values['PROMETHEUS_PORT']}" in command
        # The lifecycle API (stop/reload over HTTP) stays off.
        assert not any("lifecycle" in arg for arg in command)


def test_monitoring_without_flower_installed_says_how_to_get_it(
    values: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(monitoring.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OpsError) as caught:
        monitoring.programs(tmp_path, values, {})
    assert "Flower" in str(caught.value) and "uv sync" in caught.value.fix


def test_a_busy_monitoring_port_is_a_warning_for_doctor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks.py").write_text("")
    (tmp_path / "pyproject.toml").write_text("")
    env = Environment.parse("staging")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(
            Environment,
            "default_ports",
            property(lambda self: {"FLOWER_PORT": port, "BACKEND_PORT": port}),
        )
        monkeypatch.setattr(doctor, "_stack_running", lambda env: False)
        findings = {f.check: f.status for f in doctor.check_ports(env)}
    assert findings == {"port FLOWER_PORT": "warn", "port BACKEND_PORT": "fail"}
