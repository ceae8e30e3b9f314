"""The compose runtime: the exact `docker compose` argv per environment and task.

No Docker engine runs here, so a `docker` stand-in on PATH records every argv it gets (and its
working directory), answers `docker version` like a running engine and `docker compose ps` with
JSON; environment variables script the other situations (engine down, no compose plugin).
"""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops import env as env_files
from ops import project, runtimes
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes import compose
from ops.runtimes.compose import ComposeRuntime

ENVS = ["dev", "staging", "prod"]
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what compose reports for a port bound everywhere

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
        log.write(json.dumps({{"tool": os.path.basename(sys.argv[0]), "args": args,
                              "cwd": os.getcwd()}}) + "\\n")
    if args[:1] == ["version"]:
        if os.environ.get("FAKE_ENGINE") == "down":
            print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock",
                  file=sys.stderr)
            sys.exit(1)
        print("27.3.1")
        sys.exit(0)
    if args[:1] == ["compose"] and os.environ.get("FAKE_NO_PLUGIN"):
        print("docker: unknown command: docker compose", file=sys.stderr)
        sys.exit(1)
    if args[-1:] == ["version"]:
        print("Docker Compose version v2.29.7")
        sys.exit(0)
    if "ps" in args and os.environ.get("FAKE_PS"):
        sys.stdout.write(open(os.environ["FAKE_PS"]).read())
    if os.environ.get("FAKE_FAIL") and any(a in args for a in ("up", "build", "down")):
        print("service \\"backend\\" didn't complete successfully: exit 1", file=sys.stderr)
        sys.exit(17)
    sys.exit(0)
    """
)

PS_LINES = [
    {
        "Name": "mi-dev-backend-1",
        "Service": "backend",
        "State": "running",
        "Health": "healthy",
        "Status": "Up 2 minutes (healthy)",
        "ExitCode": 0,
        "Publishers": [
            {"URL": "127.0.0.1", "TargetPort": 8000, "PublishedPort": 8000, "Protocol": "tcp"}
        ],
    },
    {
        "Name": "mi-dev-whisper-1",
        "Service": "whisper",
        "State": "running",
        "Health": "starting",
        "Status": "Up 5 seconds (health: starting)",
        "ExitCode": 0,
        "Publishers": [
            {"URL": "127.0.0.1", "TargetPort": 9101, "PublishedPort": 9101, "Protocol": "tcp"},
            {"URL": "127.0.0.1", "TargetPort": 50051, "PublishedPort": 50051, "Protocol": "tcp"},
        ],
    },
    {
        "Name": "mi-dev-migrate-1",
        "Service": "migrate",
        "State": "exited",
        "Health": "",
        "Status": "Exited (0) 2 minutes ago",
        "ExitCode": 0,
        "Publishers": [],
    },
    {
        "Name": "mi-dev-worker-1",
        "Service": "worker",
        "State": "exited",
        "Health": "",
        "Status": "Exited (1) 1 minute ago",
        "ExitCode": 1,
        "Publishers": None,
    },
    {
        "Name": "mi-dev-postgres-1",
        "Service": "postgres",
        "State": "running",
        "Health": "unhealthy",
        "Status": "Up 3 minutes (unhealthy)",
        "ExitCode": 0,
        "Publishers": [
            {"URL": ALL_INTERFACES, "TargetPort": 5432, "PublishedPort": 5433, "Protocol": "tcp"},
            {"URL": "::", "TargetPort": 5432, "PublishedPort": 5433, "Protocol": "tcp"},
        ],
    },
]


@dataclass
class Stand:
    root: Path
    bin: Path
    log: Path

    def calls(self, tool: str = "docker") -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in rows if r["tool"] == tool]

    def compose_calls(self) -> list[list[str]]:
        """Only the compose commands that do work (not the probes of version/plugin)."""
        calls = []
        for row in self.calls("docker") + self.calls("docker-compose"):
            args = list(row["args"])  # type: ignore[call-overload]
            if args[:1] == ["version"] or args[-1:] == ["version"]:
                continue
            if args[:1] == ["compose"]:
                args = args[1:]
            calls.append(args)
        return calls

    def install(self, name: str) -> None:
        path = self.bin / name
        path.write_text(STAND_IN.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def stand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    """A throwaway repository root and a `docker` stand-in first (and alone) on PATH."""
    root = tmp_path / "repo"
    (root / "infra" / "compose").mkdir(parents=True)
    (root / "tasks.py").write_text("")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    # No whisper pin: these tests are about compose's argv, not about pulling models.
    (root / "models.lock").write_text(
        "version = 1\n[envs]\n"
        + "".join(f'{e} = {{ ollama = "llama3.2:3b" }}\n' for e in ENVS)
        + '[ollama."llama3.2:3b"]\ndigest = "'
        + "a" * 64
        + '"\n'
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    result = Stand(root=root, bin=bin_dir, log=tmp_path / "calls.jsonl")
    result.install("docker")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(result.log))
    for key in ("FAKE_ENGINE", "FAKE_NO_PLUGIN", "FAKE_PS", "FAKE_FAIL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(root)
    project.root.cache_clear()
    yield result
    project.root.cache_clear()


def _with_env_file(env: str) -> Path:
    return env_files.setup(Environment.parse(env)).path


def _files(env: str) -> list[str]:
    return [
        "-p",
        f"mi-{env}",
        "-f",
        "infra/compose/compose.yaml",
        "-f",
        f"infra/compose/compose.{env}.yaml",
        "--env-file",
        f".env.{env}",
    ]


# --- the pure argv builder --------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_argv_names_the_project_both_files_and_the_env_file(env):
    argv = compose.compose_argv(env, compose.up_command(120))
    assert argv == [
        "docker",
        "compose",
        *_files(env),
        "up",
        "-d",
        "--wait",
        "--wait-timeout",
        "120",
    ]


def test_argv_puts_profiles_before_the_command_and_rounds_the_timeout_up():
    argv = compose.compose_argv(
        "staging", compose.up_command(0.2), cli=["docker-compose"], profiles=["monitoring", "gpu"]
    )
    assert argv == [
        "docker-compose",
        *_files("staging"),
        "--profile",
        "monitoring",
        "--profile",
        "gpu",
        "up",
        "-d",
        "--wait",
        "--wait-timeout",
        "1",
    ]


# --- what each task runs, recorded by the stand-in -------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_up_runs_compose_up_wait_from_the_repo_root(stand, env):
    _with_env_file(env)

    ComposeRuntime(Environment.parse(env)).up(timeout=90.5)

    rows = [r for r in stand.calls() if "up" in r["args"]]  # type: ignore[operator]
    assert [r["args"] for r in rows] == [
        ["compose", *_files(env), "up", "-d", "--wait", "--wait-timeout", "91"]
    ]
    assert Path(str(rows[0]["cwd"])).resolve() == stand.root.resolve()


@pytest.mark.parametrize("env", ENVS)
def test_each_task_runs_its_exact_command(stand, env):
    _with_env_file(env)
    runtime = ComposeRuntime(Environment.parse(env), profiles=["monitoring"])

    runtime.build("backend")
    runtime.build()
    runtime.down(volumes=False)
    runtime.down(volumes=True)
    runtime.logs(service="worker", follow=True, tail=50)
    runtime.logs(service=None, follow=False, tail=100)
    runtime.ps()

    every = ["--profile", "*"]
    assert stand.compose_calls() == [
        [*_files(env), "--profile", "monitoring", "build", "backend"],
        [*_files(env), "--profile", "monitoring", "build"],
        [*_files(env), *every, "down", "--remove-orphans"],
        [*_files(env), *every, "down", "--remove-orphans", "--volumes"],
        [*_files(env), *every, "logs", "--tail", "50", "--follow", "worker"],
        [*_files(env), *every, "logs", "--tail", "100"],
        [*_files(env), *every, "ps", "--all", "--format", "json"],
    ]


def test_standalone_docker_compose_is_the_fallback_without_the_plugin(stand, monkeypatch):
    monkeypatch.setenv("FAKE_NO_PLUGIN", "1")
    stand.install("docker-compose")
    _with_env_file("staging")

    ComposeRuntime(Environment.parse("staging")).up(timeout=30)

    assert [r["args"] for r in stand.calls("docker-compose")] == [
        [*_files("staging"), "up", "-d", "--wait", "--wait-timeout", "30"]
    ]


def test_no_compose_at_all_says_how_to_get_it(stand, monkeypatch):
    monkeypatch.setenv("FAKE_NO_PLUGIN", "1")
    _with_env_file("dev")
    with pytest.raises(OpsError) as err:
        ComposeRuntime(Environment.parse("dev")).up(timeout=10)
    assert "docker-compose" in err.value.problem
    assert "--runtime local" in err.value.fix


# --- refusals before anything starts ----------------------------------------------------------


def test_no_engine_is_a_clear_error_suggesting_the_local_runtime(stand, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE", "down")
    _with_env_file("dev")

    with pytest.raises(OpsError) as err:
        ComposeRuntime(Environment.parse("dev")).up(timeout=10)

    assert "Docker engine" in err.value.problem and "Cannot connect" in err.value.problem
    assert "--runtime local" in err.value.fix
    assert stand.compose_calls() == []
    assert ComposeRuntime(Environment.parse("dev")).ps() == []
    assert ComposeRuntime(Environment.parse("dev")).is_running() is False


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_missing_env_file_outside_dev_names_env_setup(stand, env):
    with pytest.raises(OpsError) as err:
        ComposeRuntime(Environment.parse(env)).up(timeout=10)
    assert f".env.{env} does not exist" in err.value.problem
    assert f"inv env.setup --env {env}" in err.value.fix
    assert not (stand.root / f".env.{env}").exists()
    assert stand.compose_calls() == []

    with pytest.raises(OpsError, match=f"inv env.setup --env {env}"):
        ComposeRuntime(Environment.parse(env)).build(None)


def test_dev_gets_its_env_file_made_on_first_up(stand, capsys):
    ComposeRuntime(Environment.parse("dev")).up(timeout=10)

    path = stand.root / ".env.dev"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert env_files.check(Environment.parse("dev")) == []
    assert "created .env.dev" in capsys.readouterr().out
    assert stand.compose_calls()[-1][-5:] == ["up", "-d", "--wait", "--wait-timeout", "10"]


def test_a_weak_secret_in_prod_stops_up_naming_the_key(stand):
    path = _with_env_file("prod")
    text = "\n".join(
        "API_TOKEN=change-me" if line.startswith("API_TOKEN=") else line
        for line in path.read_text().splitlines()
    )
    path.write_text(text + "\n")

    with pytest.raises(OpsError) as err:
        ComposeRuntime(Environment.parse("prod")).up(timeout=10)

    assert "API_TOKEN" in err.value.problem and "placeholder" in err.value.problem
    assert "env.check --env prod" in err.value.fix
    assert stand.compose_calls() == []


def test_a_failing_compose_command_reports_its_exit_code_and_where_to_look(stand, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    _with_env_file("staging")

    with pytest.raises(OpsError) as err:
        ComposeRuntime(Environment.parse("staging")).up(timeout=10)

    assert "exit 17" in err.value.problem
    assert "inv logs --env staging" in err.value.fix
    assert "docker compose -p mi-staging" in err.value.fix


def test_a_failing_build_points_at_the_build_not_at_the_stack(stand, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    _with_env_file("staging")

    with pytest.raises(OpsError) as err:
        ComposeRuntime(Environment.parse("staging")).build("backend")

    assert "could not build backend for staging (exit 17)" in err.value.problem
    assert "inv logs" not in err.value.fix
    assert "scripts/airgap/images.py services --env staging" in err.value.fix
    assert "docker compose -p mi-staging" in err.value.fix


def test_without_an_env_file_ps_and_down_still_find_the_project_by_name(stand):
    ComposeRuntime(Environment.parse("staging")).ps()
    ComposeRuntime(Environment.parse("staging")).down(volumes=False)
    assert stand.compose_calls() == [
        ["-p", "mi-staging", "ps", "--all", "--format", "json"],
        ["-p", "mi-staging", "down", "--remove-orphans"],
    ]


# --- ps ---------------------------------------------------------------------------------------


def test_ps_turns_json_lines_into_states_with_health_and_urls(stand, tmp_path, monkeypatch):
    out = tmp_path / "ps.jsonl"
    out.write_text("".join(json.dumps(row) + "\n" for row in PS_LINES))
    monkeypatch.setenv("FAKE_PS", str(out))
    _with_env_file("dev")

    states = {s.service: s for s in ComposeRuntime(Environment.parse("dev")).ps()}

    assert {name: s.state for name, s in states.items()} == {
        "backend": "healthy",
        "whisper": "starting",
        "migrate": "exited",
        "worker": "failed",
        "postgres": "unhealthy",
    }
    assert states["backend"].url == "http://127.0.0.1:8000"
    assert states["whisper"].url == "127.0.0.1:50051"  # the gRPC port, not metrics
    assert states["postgres"].url == "postgresql://127.0.0.1:5433"
    assert states["migrate"].url == "" and states["worker"].url == ""
    assert states["backend"].ident == "mi-dev-backend-1"
    assert states["backend"].uptime == "Up 2 minutes (healthy)"
    assert ComposeRuntime(Environment.parse("dev")).is_running() is True


def test_ps_reads_the_older_json_array_format_too():
    states = compose.parse_ps(json.dumps(PS_LINES[:2]))
    assert [(s.service, s.state) for s in states] == [
        ("backend", "healthy"),
        ("whisper", "starting"),
    ]


def test_nothing_running_means_no_rows_and_not_running(stand):
    _with_env_file("dev")
    assert ComposeRuntime(Environment.parse("dev")).ps() == []
    assert ComposeRuntime(Environment.parse("dev")).is_running() is False


def test_only_stopped_containers_mean_not_running():
    runtime_states = compose.parse_ps("\n".join(json.dumps(r) for r in PS_LINES[2:4]))
    assert {s.state for s in runtime_states} == {"exited", "failed"}


def test_unreadable_ps_output_is_an_ops_error():
    with pytest.raises(OpsError, match="docker compose ps"):
        compose.parse_ps("{not json")


@pytest.mark.parametrize(
    ("publisher", "url"),
    [
        ({"URL": ALL_INTERFACES, "TargetPort": 443, "PublishedPort": 443}, "https://127.0.0.1:443"),
        ({"URL": "::1", "TargetPort": 6379, "PublishedPort": 6380}, "redis://[::1]:6380"),
        ({"URL": "127.0.0.1", "TargetPort": 8001, "PublishedPort": 0}, ""),
    ],
)
def test_published_url_per_port(publisher, url):
    assert compose.published_url([publisher]) == url


# --- selection --------------------------------------------------------------------------------


def test_explicit_compose_runtime_is_selected_when_an_engine_answers(stand):
    assert runtimes.select("compose", Environment.parse("dev")).name == "compose"


def test_explicit_compose_runtime_without_engine_points_to_local(stand, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE", "down")
    with pytest.raises(OpsError, match="--runtime local"):
        runtimes.select("compose", Environment.parse("dev"))
