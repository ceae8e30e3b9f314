#!/usr/bin/env python3
"""Offline checks of the container setup (no Docker engine needed): `uv run nox -s infra`.

    python scripts/infra_check.py [--root DIR]

1. compose-spec: every compose file against check-jsonschema's vendored compose-spec schema.
2. hadolint: every service Dockerfile and the air-gapped stand-ins' (scripts/airgap/images).
3. policy: each environment's merged config (the real `docker-compose ... config`, which merges
   the overlay and interpolates a throwaway env file generated from ops.env.schema) and the
   Dockerfiles, against the rules in RULES.
4. kubernetes: each overlay of infra/k8s rendered (`inv k8s.render`'s code, kubectl's
   kustomize, a throwaway Secret), validated strictly against the Kubernetes API schemas
   (kubernetes-validate) and KEDA's CRDs, and held to the same policy as compose.

Every finding names the file and the rule, e.g.
    infra/compose/compose.prod.yaml: [prod-publishes-only-nginx] postgres publishes 5432 ...
and the exit status is 1 when there is any. tests/infra runs the same functions on broken
copies of the files to prove each rule bites.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.environments import ENVIRONMENTS

COMPOSE_DIR = Path("infra/compose")
BASE = COMPOSE_DIR / "compose.yaml"

RULES = {
    "compose-spec": "compose files validate against the compose-spec schema",
    "compose-config": "`docker-compose config` merges and interpolates every environment",
    "healthcheck": "every long-running service has a healthcheck",
    "migrate-first": "backend and worker wait for the one-shot migrate service",
    "required-secrets": "secrets are ${VAR:?...}: missing or empty stops compose",
    "no-default-secrets": "no secret in the merged config is a default or placeholder",
    "container-addresses": "services get container-network URLs, never the host's 127.0.0.1",
    "image-tag": "every image is tagged, and never :latest",
    "image-variable": "third-party images are ${NAME_IMAGE:-default}: air-gapped stand-ins fit in",
    "build-target": "every build names an existing Dockerfile stage",
    "loopback-ports": "dev and staging publish ports on 127.0.0.1 only",
    "env-ports": "published host ports are the env file's *_PORT values",
    "prod-publishes-only-nginx": "in prod only nginx publishes ports",
    "prod-resource-limits": "every prod service has CPU and memory limits",
    "prod-restart-policy": "every long-running prod service restarts by itself",
    "prod-read-only": "services that can run read-only do so in prod",
    "log-rotation": "staging and prod logs are rotated",
    "compose-worker-grace": "the worker's stop_grace_period outlasts its task time limit",
    "from-pinned": "every FROM image is tagged (not :latest) or pinned by digest",
    "non-root-user": "every runnable stage ends as a numeric, non-root USER",
    "image-healthcheck": "every runnable stage has a HEALTHCHECK",
    "no-build-tools": "runtime stages carry no uv, compiler or build packages",
    "uv-workspace-layers": "dependencies install in their own cached layer (uv's Docker guide)",
    "workspace-manifests": "the manifests stage copies every workspace member's pyproject.toml",
    "dockerfile-per-service": "every service has a Dockerfile",
    "dockerignore": ".dockerignore keeps secrets, state and tooling out of the context",
    "hadolint": "hadolint finds nothing (rule codes DLxxxx/SCxxxx)",
    "k8s-render": "every Kubernetes overlay renders (kustomize)",
    "k8s-schema": "every rendered object validates strictly (Kubernetes API, KEDA CRDs)",
    "k8s-limits": "every container (init too) requests and limits CPU and memory",
    "k8s-probes": "every long-running container has startup, readiness and liveness probes",
    "k8s-non-root": "pods run as a non-root user; containers read-only, no privileges",
    "k8s-image-pinned": "every image is tagged, and never :latest",
    "k8s-no-default-secrets": "no Secret value is a placeholder, none is committed",
    "k8s-worker-grace": "the worker's grace period outlasts its task time limit",
    "k8s-pdb": "PodDisruptionBudgets use maxUnavailable >= 1: a drain is never blocked",
    "k8s-spread": "replicated Deployments spread over nodes (topologySpreadConstraints)",
    "k8s-autoscaling": "the backend scales on CPU (HPA), the worker on its queues (KEDA)",
    "k8s-network": "ingress is denied by default; whisper and llm admit only the worker",
}

# Services whose images work with a read-only root filesystem (writes go to tmpfs/volumes).
READ_ONLY_IN_PROD = frozenset(
    {"migrate", "backend", "worker", "whisper", "whisper-cuda", "llm", "redis", "nginx"}
    | {"prometheus", "objectstore"}
)
# Which env-file key publishes which container port, per environment that publishes it.
ENV_PORTS = {
    "backend": {"BACKEND_PORT": 8000},
    "llm": {"LLM_PORT": 8001},
    "whisper": {"WHISPER_PORT": 50051, "WHISPER_METRICS_PORT": 9101},
    "worker": {"WORKER_METRICS_PORT": 9102},
    "postgres": {"POSTGRES_PORT": 5432},
    "redis": {"REDIS_PORT": 6379},
    "objectstore": {"OBJECTSTORE_PORT": 9000},
}
# A third-party image as compose files must write it: `${POSTGRES_IMAGE:-pgvector/pgvector:pg16}`.
IMAGE_VARIABLE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*_IMAGE:-[^}]+\}$")
RESTARTING = frozenset({"always", "unless-stopped", "on-failure"})
PLACEHOLDER_VALUES = frozenset({"change-me", "changeme", "secret", "password", "example", "todo"})
# Paths that must never reach a build context (each checked against .dockerignore).
MUST_IGNORE = (
    ".env",
    ".env.dev",
    ".env.prod",
    "services/backend/.env.local",
    ".data/dev/postgres/base",
    "backups/prod/2026.tar",
    ".git/HEAD",
    ".venv/bin/python",
    ".nox/tests/bin/python",
    ".models/whisper/model.bin",
)
MUST_KEEP = (
    "uv.lock",
    "pyproject.toml",
    "services/backend/src/backend/main.py",
    "scripts/healthcheck.py",
)
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|build-essential|make|cmake|pkg-config|python3-dev|libc6-dev)\b"
)


@dataclass(frozen=True, order=True)
class Violation:
    file: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.rule}] {self.message}"


class ConfigError(RuntimeError):
    """`docker-compose config` refused the files (the message is compose's)."""


# --- tools ------------------------------------------------------------------------------------


def tool(name: str) -> str:
    """A tool from the running interpreter's environment (the venv), else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} is not installed: run `uv sync` (it is in the `validate` dependency group)"
        )
    return found


def _clean_env() -> dict[str, str]:
    # Interpolation must see only the env file: a secret exported in the shell would hide a
    # missing one, and COMPOSE_* variables would change what config renders.
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}


def _rel(root: Path, path: Path | str) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def compose_files(root: Path) -> list[Path]:
    return sorted((root / COMPOSE_DIR).glob("compose*.yaml"))


def service_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "services").glob("*/pyproject.toml"))


def dockerfiles(root: Path) -> list[Path]:
    """The services' Dockerfiles, and the job images' under libs/ (ops)."""
    return sorted(
        [*(root / "services").glob("*/Dockerfile"), *(root / "libs").glob("*/Dockerfile")]
    )


# --- 1. schema ----------------------------------------------------------------------------------


def check_schema(root: Path, files: Iterable[Path] | None = None) -> list[Violation]:
    """check-jsonschema's bundled compose-spec schema over the compose files."""
    targets = list(files) if files is not None else compose_files(root)
    proc = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "-o", "JSON"]
        + [str(f) for f in targets],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [Violation(_rel(root, targets[0]), "compose-spec", proc.stderr.strip())]
    found = [
        Violation(_rel(root, e["filename"]), "compose-spec", f"{e['path']}: {e['message']}")
        for e in report.get("errors", [])
    ]
    found += [
        Violation(_rel(root, e.get("filename", "?")), "compose-spec", e.get("message", str(e)))
        for e in report.get("parse_errors", [])
    ]
    if proc.returncode != 0 and not found:
        found.append(Violation("infra/compose", "compose-spec", proc.stderr.strip()))
    return found


# --- 2. hadolint -------------------------------------------------------------------------------


def check_hadolint(root: Path, files: Iterable[Path] | None = None) -> list[Violation]:
    # The services' Dockerfiles and those of the air-gapped stand-ins (scripts/airgap).
    standins = sorted(root.glob("scripts/airgap/images/*/Dockerfile"))
    targets = list(files) if files is not None else [*dockerfiles(root), *standins]
    if not targets:
        return []
    config = root / ".hadolint.yaml"
    argv = [tool("hadolint"), "--format", "json", "--no-color"]
    if config.exists():
        argv += ["--config", str(config)]
    proc = subprocess.run(
        argv + [str(f) for f in targets], capture_output=True, text=True, check=False
    )
    try:
        findings = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return [Violation(_rel(root, targets[0]), "hadolint", (proc.stderr or proc.stdout).strip())]
    return [
        Violation(
            _rel(root, f["file"]),
            f"hadolint {f['code']}",
            f"line {f['line']}: {f['message']} ({f['level']})",
        )
        for f in findings
    ]


# --- 3a. merged compose config -----------------------------------------------------------------


def throwaway_env(env: str) -> dict[str, str]:
    """A complete env file's values for `env` from the schema, with freshly generated secrets."""
    from ops import env as env_files
    from ops.env import schema
    from ops.environment import Environment

    values = schema.defaults_for(Environment.parse(env))
    for key in schema.secret_keys():
        values[key] = env_files.generate_secret()
    return values


def write_env_file(env: str, values: dict[str, str], directory: Path) -> Path:
    from ops.env import file

    path = directory / f".env.{env}"
    path.write_text(file.render(env, values, {}))
    return path


def merged_config(root: Path, env: str, env_file: Path) -> dict[str, Any]:
    """`docker-compose config` of base + overlay with every profile, as the runtime runs it."""
    from ops.runtimes.compose import compose_argv

    argv = compose_argv(
        env,
        ["config", "--format", "json"],
        cli=[tool("docker-compose")],
        profiles=["*"],
        env_file=str(env_file),
    )
    proc = subprocess.run(
        argv, cwd=root, capture_output=True, text=True, check=False, env=_clean_env()
    )
    if proc.returncode != 0:
        raise ConfigError(proc.stderr.strip() or f"docker-compose config exited {proc.returncode}")
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def raw_services(root: Path, env: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Per file (base, overlay): the services mapping as written (YAML merge keys resolved)."""
    from ruamel.yaml import YAML  # check-jsonschema's YAML library (validate group), typed

    result = {}
    for path in (root / BASE, root / COMPOSE_DIR / f"compose.{env}.yaml"):
        data = YAML(typ="safe", pure=True).load(path.read_text()) or {}
        result[_rel(root, path)] = data.get("services") or {}
    return result


def declaring(raw: dict[str, dict[str, dict[str, Any]]], service: str, key: str) -> str:
    """The file(s) that write `key` for `service` (the overlay when both do)."""
    files = [name for name, services in raw.items() if key in (services.get(service) or {})]
    return files[-1] if files else next(reversed(raw))


def one_shot_services(config: dict[str, Any]) -> set[str]:
    """Services others wait on to *complete*: they are meant to exit."""
    return {
        dep
        for service in config["services"].values()
        for dep, cond in (service.get("depends_on") or {}).items()
        if (cond or {}).get("condition") == "service_completed_successfully"
    }


def _image_tag(image: str) -> str | None:
    """The tag of an image reference (None when untagged); digests count as pinned."""
    if "@sha256:" in image:
        return "@digest"
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def check_config(
    root: Path, env: str, config: dict[str, Any], env_values: dict[str, str]
) -> list[Violation]:
    from ops.env import schema

    raw = raw_services(root, env)
    services: dict[str, dict[str, Any]] = config["services"]
    one_shots = one_shot_services(config)
    address_keys = {k for k in schema.all_keys() if k.endswith(("_URL", "_HOST"))}
    found: list[Violation] = []

    def add(service: str, key: str, rule: str, message: str) -> None:
        found.append(Violation(declaring(raw, service, key), rule, f"{env}: {message}"))

    for name, svc in sorted(services.items()):
        long_running = name not in one_shots
        test = (svc.get("healthcheck") or {}).get("test") or []
        if long_running and (not test or test[0] == "NONE" or svc["healthcheck"].get("disable")):
            add(name, "healthcheck", "healthcheck", f"{name} runs for good but has no healthcheck")

        image = svc.get("image", "")
        tag = _image_tag(image) if image else None
        if not image and "build" not in svc:
            add(name, "image", "image-tag", f"{name} has neither image nor build")
        elif image and tag in {None, "latest"}:
            add(name, "image", "image-tag", f"{name} uses {image!r}: pin a version tag")

        written = (raw[declaring(raw, name, "image")].get(name) or {}).get("image")
        if written and "build" not in svc and not IMAGE_VARIABLE.match(str(written)):
            add(
                name,
                "image",
                "image-variable",
                f"{name} uses {written!r}: write ${{{name.upper().replace('-', '_')}_IMAGE:-"
                f"{written}}} so a local registry or stand-in can replace it",
            )

        build = svc.get("build")
        if build:
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            target = build.get("target")
            if not dockerfile.exists():
                add(name, "build", "build-target", f"{name} builds from missing {dockerfile}")
            elif target and target not in parse_dockerfile(dockerfile).names():
                add(name, "build", "build-target", f"{name} builds {target!r}: no such stage")

        for key, value in (svc.get("environment") or {}).items():
            text = str(value or "")
            if key in address_keys and re.search(r"127\.0\.0\.1|localhost", text):
                add(
                    name,
                    "environment",
                    "container-addresses",
                    f"{name} gets {key}={text!r}: use the compose service name",
                )
            if text.lower() in PLACEHOLDER_VALUES:
                add(
                    name,
                    "environment",
                    "no-default-secrets",
                    f"{name} gets a placeholder value for {key}",
                )

        ports = svc.get("ports") or []
        if env == "prod" and ports and name != "nginx":
            shown = ", ".join(str(p.get("published") or p.get("target")) for p in ports)
            add(
                name,
                "ports",
                "prod-publishes-only-nginx",
                f"{name} publishes {shown}: in prod only nginx may publish ports",
            )
        if env in {"dev", "staging"}:
            for port in ports:
                if port.get("host_ip") not in {"127.0.0.1", "::1"}:
                    add(
                        name,
                        "ports",
                        "loopback-ports",
                        f"{name} publishes {port.get('published')} on "
                        f"{port.get('host_ip') or 'every interface'}: bind 127.0.0.1",
                    )
            by_target = {int(p["target"]): str(p.get("published")) for p in ports}
            for key, target in ENV_PORTS.get(name, {}).items():
                if target in by_target and by_target[target] != env_values[key]:
                    add(
                        name,
                        "ports",
                        "env-ports",
                        f"{name} publishes {target} on {by_target[target]}, "
                        f"but {key}={env_values[key]}",
                    )

        if env in {"staging", "prod"}:
            logging = svc.get("logging") or {}
            if not (logging.get("options") or {}).get("max-size") and logging.get("driver") not in {
                "local",
                "journald",
                "syslog",
            }:
                add(name, "logging", "log-rotation", f"{name} logs are not rotated (max-size)")

        if env == "prod":
            limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
            if not limits.get("cpus") or not limits.get("memory"):
                add(name, "deploy", "prod-resource-limits", f"{name} has no CPU/memory limits")
            restart = svc.get("restart") or "no"
            if long_running and restart not in RESTARTING:
                add(name, "restart", "prod-restart-policy", f"{name} has restart: {restart}")
            if not long_running and restart != "no":
                add(name, "restart", "prod-restart-policy", f"one-shot {name} restarts: {restart}")
            if name in READ_ONLY_IN_PROD and not svc.get("read_only"):
                add(name, "read_only", "prod-read-only", f"{name} must run with read_only: true")

    worker = services.get("worker")
    if worker is not None:
        # SIGTERM lets running tasks finish (warm shutdown); a SIGKILL before the longest
        # one ends would cost that meeting a delivery.
        limit = _compose_worker_time_limit(worker)
        grace = go_duration_seconds(str(worker.get("stop_grace_period") or "10s"))
        if grace <= limit:
            add(
                "worker",
                "stop_grace_period",
                "compose-worker-grace",
                f"stop_grace_period {grace:g}s must exceed WORKER_TIME_LIMIT {limit:g}s",
            )

    for name in ("backend", "worker"):
        deps = (services.get(name) or {}).get("depends_on") or {}
        if (deps.get("migrate") or {}).get("condition") != "service_completed_successfully":
            found.append(
                Violation(
                    _rel(root, root / BASE),
                    "migrate-first",
                    f"{env}: {name} must depend on migrate (service_completed_successfully)",
                )
            )
    return found


def check_required_secrets(root: Path, env: str, base_values: dict[str, str]) -> list[Violation]:
    """Each secret, emptied in turn, must make `config` fail and name it; and statically, every
    reference to a secret in the compose files must be the `${KEY:?...}` form."""
    from ops.env import schema

    found: list[Violation] = []
    secrets = schema.container_secret_keys()
    host_only = sorted(set(schema.secret_keys()) - set(secrets))
    for path in compose_files(root):
        text = path.read_text()
        for key in host_only:
            if re.search(r"\b" + key + r"\b", text):
                found.append(
                    Violation(
                        _rel(root, path),
                        "required-secrets",
                        f"{key} is read on the host only: no compose service may get it",
                    )
                )
        for match in re.finditer(r"(?<!\$)\$\{(" + "|".join(secrets) + r")(?!:\?)[^}]*\}", text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(
                Violation(
                    _rel(root, path),
                    "required-secrets",
                    f"line {line}: {match.group(0)[:40]}... must be ${{{match.group(1)}:?message}}",
                )
            )
    with tempfile.TemporaryDirectory() as tmp:
        for key in secrets:
            values = {**base_values, key: ""}
            try:
                merged_config(root, env, write_env_file(env, values, Path(tmp)))
            except ConfigError as exc:
                if key in str(exc):
                    continue
            found.append(
                Violation(
                    _rel(root, root / BASE),
                    "required-secrets",
                    f"{env}: config succeeds with an empty {key}: something defaults it",
                )
            )
    return found


# --- 3b. Dockerfiles ---------------------------------------------------------------------------


@dataclass
class Stage:
    index: int
    base: str  # as written, e.g. ${PYTHON_IMAGE} or builder
    name: str | None
    instructions: list[tuple[str, str, int]] = field(default_factory=list)  # (KEYWORD, rest, line)

    def all(self, keyword: str) -> list[tuple[str, int]]:
        return [(rest, line) for kw, rest, line in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str | None]
    stages: list[Stage]
    from_lines: list[int]

    def names(self) -> set[str]:
        return {s.name for s in self.stages if s.name}

    def stage(self, ref: str) -> Stage | None:
        for s in self.stages:
            if s.name == ref or str(s.index) == ref:
                return s
        return None

    def resolve(self, image: str) -> str:
        def sub(match: re.Match[str]) -> str:
            value = self.args.get(match.group(1) or match.group(2))
            return value if value is not None else match.group(0)

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, image)

    def used_stages(self) -> set[str]:
        used = set()
        for s in self.stages:
            if self.stage(s.base) is not None:
                used.add(s.base)
            for kw, rest, _ in s.instructions:
                if kw in {"COPY", "RUN", "ADD"}:
                    used.update(re.findall(r"--(?:mount=[^ ]*?)?from=([\w.-]+)", rest))
        return used

    def runnable(self) -> list[Stage]:
        """Stages nothing else builds on: the images people actually run."""
        used = self.used_stages()
        return [s for s in self.stages if (s.name or str(s.index)) not in used]

    def chain(self, stage: Stage) -> list[Stage]:
        """The stage and the stages of this file it is built FROM, oldest first."""
        result = [stage]
        parent = self.stage(stage.base)
        while parent is not None and parent not in result:
            result.insert(0, parent)
            parent = self.stage(parent.base)
        return result


def parse_dockerfile(path: Path) -> Dockerfile:
    """Enough of the Dockerfile grammar for policy checks: continuation lines, ARG, stages."""
    args: dict[str, str | None] = {}
    stages: list[Stage] = []
    from_lines: list[int] = []
    logical: list[tuple[str, int]] = []
    buffer, start = "", 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comments inside a continued instruction
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append((buffer + stripped, start))
        buffer = ""
    for text, number in logical:
        keyword, _, rest = text.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else None
            stages.append(Stage(len(stages), parts[0], name))
            from_lines.append(number)
        elif keyword == "ARG" and not stages:
            key, eq, default = rest.partition("=")
            args[key.strip()] = default.strip().strip('"') if eq else None
        elif stages:
            stages[-1].instructions.append((keyword, rest, number))
    return Dockerfile(path, args, stages, from_lines)


def check_dockerfile(root: Path, path: Path, members: list[str]) -> list[Violation]:
    df = parse_dockerfile(path)
    rel = _rel(root, path)
    found: list[Violation] = []

    def add(rule: str, message: str) -> None:
        found.append(Violation(rel, rule, message))

    for stage, line in zip(df.stages, df.from_lines, strict=True):
        if df.stage(stage.base) is not None and stage.base != "scratch":
            continue
        image = df.resolve(stage.base)
        if "$" in image:
            add("from-pinned", f"line {line}: FROM {stage.base}: its ARG has no default")
        elif image != "scratch" and _image_tag(image) in {None, "latest"}:
            add("from-pinned", f"line {line}: FROM {image}: pin a version tag or digest")

    for stage in df.runnable():
        label = stage.name or f"stage {stage.index}"
        chain = df.chain(stage)
        users = [rest for s in chain for rest, _ in s.all("USER")]
        user = users[-1] if users else ""
        uid = user.split(":", 1)[0]
        if not uid.isdigit() or int(uid) == 0:
            add(
                "non-root-user",
                f"{label} runs as {user or 'root (no USER)'}: end with `USER <uid>:<gid>`, "
                "a numeric non-zero UID",
            )
        checks = [rest for s in chain for rest, _ in s.all("HEALTHCHECK")]
        if not checks or checks[-1].upper().startswith("NONE"):
            add("image-healthcheck", f"{label} has no HEALTHCHECK")
        if label != "development":
            for s in chain:
                for kw, rest, line in s.instructions:
                    uv = kw == "COPY" and re.search(r"--from=(uv\b|\S*astral-sh/uv)", rest)
                    tools = kw == "RUN" and "install" in rest and BUILD_TOOLS.search(rest)
                    if uv or tools:
                        shown = f"{kw} {rest[:60]}"
                        add("no-build-tools", f"line {line}: {label} gets build tooling: {shown}")

    text = path.read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    needs = {
        "UV_COMPILE_BYTECODE=1": "ENV UV_COMPILE_BYTECODE=1",
        "UV_LINK_MODE=copy": "ENV UV_LINK_MODE=copy",
        "--mount=type=cache,target=/root/.cache/uv": "a uv cache mount",
        "--mount=type=bind": "bind mounts for the manifests",
    }
    for needle, what in needs.items():
        if needle not in joined:
            add("uv-workspace-layers", f"missing {what}")
    if not re.search(r"uv sync --locked --no-install-workspace[^\n]*--package", joined):
        add(
            "uv-workspace-layers",
            "no `uv sync --locked --no-install-workspace ... --package <member>` dependency layer",
        )
    for member in members:
        if not re.search(rf"COPY\s+{re.escape(member)}/pyproject\.toml\s", text):
            add("workspace-manifests", f"the manifests stage does not copy {member}/pyproject.toml")
    return found


def workspace_members(root: Path) -> list[str]:
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = meta["tool"]["uv"]["workspace"]["members"]
    members = {
        p.parent.relative_to(root).as_posix()
        for pattern in patterns
        for p in root.glob(f"{pattern}/pyproject.toml")
    }
    return sorted(members)


def check_dockerfiles(root: Path) -> list[Violation]:
    members = workspace_members(root)
    found: list[Violation] = []
    for service in service_dirs(root):
        if not (service / "Dockerfile").exists():
            found.append(
                Violation(_rel(root, service), "dockerfile-per-service", "no Dockerfile here")
            )
    for path in dockerfiles(root):
        found += check_dockerfile(root, path, members)
    return found


# --- 3c. .dockerignore ---------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip().strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "$")


def dockerignored(rules: list[str], path: str) -> bool:
    """Docker's .dockerignore semantics: the last matching pattern wins; `!` re-includes; a
    pattern matching a parent directory excludes everything under it."""
    prefixes = [path] + ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)]
    ignored = False
    for rule in rules:
        negate = rule.startswith("!")
        regex = _pattern(rule[1:] if negate else rule)
        if any(regex.match(p) for p in prefixes):
            ignored = not negate
    return ignored


def check_dockerignore(root: Path) -> list[Violation]:
    path = root / ".dockerignore"
    if not path.exists():
        return [Violation(".dockerignore", "dockerignore", "missing: the whole tree is sent")]
    rules = [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    found = [
        Violation(".dockerignore", "dockerignore", f"{p} would be sent to the build context")
        for p in MUST_IGNORE
        if not dockerignored(rules, p)
    ]
    found += [
        Violation(".dockerignore", "dockerignore", f"{p} is ignored but the images need it")
        for p in MUST_KEEP
        if dockerignored(rules, p)
    ]
    return found


# --- 4. Kubernetes ------------------------------------------------------------------------------

K8S_DIR = Path("infra/k8s")
K8S_VERSION = "1.33"  # the oldest Kubernetes minor the manifests must validate against
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
WORKLOAD_KINDS = LONG_RUNNING_KINDS | {"Job", "CronJob"}
# The example hosts a throwaway staging/prod env file names (they reach external services).
EXTERNAL_HOSTS = {
    "POSTGRES_HOST": "postgres.db.example.internal",
    "REDIS_HOST": "redis.cache.example.internal",
    "S3_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com",
}


def k8s_overlays(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / K8S_DIR / "overlays").glob("*/kustomization.yaml"))


def throwaway_k8s_secrets(env: str) -> str:
    """The Secret's env file for `env` from a throwaway env file (external hosts outside dev)."""
    from ops import k8s
    from ops.env import file
    from ops.environment import Environment

    values = throwaway_env(env)
    if env not in k8s.IN_CLUSTER_DATA:
        values.update(EXTERNAL_HOSTS)
    secret = k8s.secret_values(Environment.parse(env), file.interpolate(values))
    return "".join(f"{key}={value}\n" for key, value in sorted(secret.items()))


def _yaml_documents(text: str) -> list[Any]:
    from ruamel.yaml import YAML

    return [doc for doc in YAML(typ="safe", pure=True).load_all(text) if doc]


def render_k8s(root: Path, env: str) -> list[dict[str, Any]]:
    """The rendered objects of one overlay (ConfigError with kustomize's words)."""
    from ops import k8s
    from ops.environment import Environment
    from ops.errors import OpsError

    try:
        text = k8s.render(
            Environment.parse(env),
            tag="1.0.0",
            registry="registry.example/mi",
            secrets_text=throwaway_k8s_secrets(env),
            root=root,
        )
    except OpsError as exc:
        raise ConfigError(exc.problem) from None
    return _yaml_documents(text)


def k8s_sources(root: Path) -> dict[tuple[str, str], str]:
    """(kind, name) -> the file under infra/k8s that declares it, to name in findings."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted((root / K8S_DIR).rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _yaml_documents(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc:
                name = (doc.get("metadata") or {}).get("name", "")
                found.setdefault((doc["kind"], name), _rel(root, path))
    return found


def _strict(schema: Any) -> Any:
    """A JSON schema whose objects with declared properties refuse any other key (what the
    API server does with unknown fields under --validate=strict)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def keda_schemas() -> dict[str, dict[str, Any]]:
    """KEDA's ScaledObject and TriggerAuthentication schemas, from its CRDs' models."""
    from cloudcoil.models.keda import v1alpha1

    return {
        kind: _strict(getattr(v1alpha1, kind).model_json_schema(by_alias=True))
        for kind in ("ScaledObject", "TriggerAuthentication", "ScaledJob")
    }


def validate_k8s_object(obj: dict[str, Any], keda: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with one object against its schema (empty when valid)."""
    import jsonschema
    import kubernetes_validate

    if str(obj.get("apiVersion", "")).startswith("keda.sh/"):
        schema = keda.get(obj["kind"])
        if schema is None:
            return [f"no KEDA schema for kind {obj['kind']}"]
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in jsonschema.Draft202012Validator(schema).iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(map(str, exc.absolute_path)) or "(root)"
        return [f"{path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [exc.message]
    return []


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get(
            "spec"
        )
    if obj["kind"] in WORKLOAD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def go_duration_seconds(text: str) -> float:
    """Seconds in a compose duration ("1m30s", "1920s", "2h"), as compose writes them."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


def _compose_worker_time_limit(worker: dict[str, Any]) -> float:
    """WORKER_TIME_LIMIT as the compose worker gets it: its environment, else its default."""
    from worker.config import WorkerSettings

    value = (worker.get("environment") or {}).get("WORKER_TIME_LIMIT")
    if value:
        return float(value)
    return float(WorkerSettings.model_fields["worker_time_limit"].default)


def _worker_time_limit(objects: list[dict[str, Any]], pod: dict[str, Any]) -> float:
    """WORKER_TIME_LIMIT as the worker container gets it: its env, its ConfigMaps, else the
    worker's own default."""
    from worker.config import WorkerSettings

    container = pod["containers"][0]
    for item in container.get("env") or []:
        if item.get("name") == "WORKER_TIME_LIMIT" and "value" in item:
            return float(item["value"])
    maps = {o["metadata"]["name"]: o.get("data") or {} for o in objects if o["kind"] == "ConfigMap"}
    for source in container.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        if ref in maps and "WORKER_TIME_LIMIT" in maps[ref]:
            return float(maps[ref]["WORKER_TIME_LIMIT"])
    return float(WorkerSettings.model_fields["worker_time_limit"].default)


def check_k8s_objects(
    root: Path, env: str, objects: list[dict[str, Any]], keda: dict[str, dict[str, Any]]
) -> list[Violation]:
    import base64

    sources = k8s_sources(root)
    overlay = _rel(root, root / K8S_DIR / "overlays" / env / "kustomization.yaml")
    found: list[Violation] = []

    def add(obj: dict[str, Any], rule: str, message: str) -> None:
        name = (
            obj["metadata"]["name"].split("-")[0]
            if obj["kind"] in {"Secret", "ConfigMap"}
            else obj["metadata"]["name"]
        )
        source = sources.get((obj["kind"], name)) or sources.get(
            (obj["kind"], obj["metadata"]["name"].rsplit("-", 1)[0])
        )
        found.append(
            Violation(
                source or overlay,
                rule,
                f"{env}: {obj['kind']}/{obj['metadata']['name']}: {message}",
            )
        )

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
        for problem in validate_k8s_object(obj, keda):
            add(obj, "k8s-schema", problem)

        pod = _pod_spec(obj)
        if pod is not None:
            security = pod.get("securityContext") or {}
            if not security.get("runAsNonRoot") or security.get("runAsUser", 1) == 0:
                add(
                    obj,
                    "k8s-non-root",
                    "the pod must set runAsNonRoot: true and a non-zero runAsUser",
                )
            for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                cname = container["name"]
                resources = container.get("resources") or {}
                for part in ("requests", "limits"):
                    got = resources.get(part) or {}
                    if not got.get("cpu") or not got.get("memory"):
                        add(obj, "k8s-limits", f"container {cname} has no CPU/memory {part}")
                context = container.get("securityContext") or {}
                if (container.get("securityContext") or {}).get("runAsUser") == 0:
                    add(obj, "k8s-non-root", f"container {cname} runs as root (runAsUser: 0)")
                if context.get("allowPrivilegeEscalation") is not False or context.get(
                    "privileged"
                ):
                    add(obj, "k8s-non-root", f"container {cname} may escalate privileges")
                if context.get("readOnlyRootFilesystem") is not True:
                    add(obj, "k8s-non-root", f"container {cname} has a writable root filesystem")
                if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                    add(obj, "k8s-non-root", f"container {cname} keeps its capabilities (drop ALL)")
                image = str(container.get("image", ""))
                if _image_tag(image) in {None, "latest"}:
                    add(obj, "k8s-image-pinned", f"container {cname} uses {image!r}: pin a tag")
            if obj["kind"] in LONG_RUNNING_KINDS:
                for container in pod.get("containers", []):
                    missing = [
                        probe
                        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
                        if probe not in container
                    ]
                    if missing:
                        add(
                            obj,
                            "k8s-probes",
                            f"container {container['name']} has no {', '.join(missing)}",
                        )
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "worker":
                limit = _worker_time_limit(objects, pod)
                grace = float(pod.get("terminationGracePeriodSeconds", 30))
                if grace <= limit:
                    add(
                        obj,
                        "k8s-worker-grace",
                        f"terminationGracePeriodSeconds {grace:g} must exceed WORKER_TIME_LIMIT "
                        f"{limit:g}: a scale-down would kill a running task",
                    )
            replicated = int((obj.get("spec") or {}).get("replicas", 1)) > 1
            if (
                obj["kind"] == "Deployment"
                and replicated
                and not pod.get("topologySpreadConstraints")
            ):
                add(obj, "k8s-spread", "replicated but not spread over nodes")

        if obj["kind"] == "Secret":
            for key, value in (obj.get("data") or {}).items():
                text = base64.b64decode(value).decode(errors="replace")
                if text.lower() in PLACEHOLDER_VALUES or text == "":
                    if key in {"S3_PREFIX", "REDIS_PASSWORD"} and text == "":
                        continue
                    add(obj, "k8s-no-default-secrets", f"{key} is a placeholder or empty")
        if obj["kind"] == "PodDisruptionBudget":
            spec = obj.get("spec") or {}
            unavailable = str(spec.get("maxUnavailable", "0")).rstrip("%")
            if "minAvailable" in spec or not unavailable.isdigit() or int(unavailable) < 1:
                add(
                    obj,
                    "k8s-pdb",
                    "use maxUnavailable >= 1 (minAvailable blocks a drain at one replica)",
                )

    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    hpa = [
        o
        for o in by_kind.get("HorizontalPodAutoscaler", [])
        if o["spec"]["scaleTargetRef"]["name"] == "backend"
    ]
    if not hpa or not any(
        m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
        for m in hpa[0]["spec"].get("metrics", [])
    ):
        found.append(
            Violation(
                overlay, "k8s-autoscaling", f"{env}: no CPU HorizontalPodAutoscaler for the backend"
            )
        )
    scaled = [
        o
        for o in by_kind.get("ScaledObject", [])
        if o["spec"]["scaleTargetRef"]["name"] == "worker"
    ]
    if not scaled or not all(
        t.get("type") == "redis" for t in scaled[0]["spec"].get("triggers", [])
    ):
        found.append(
            Violation(
                overlay,
                "k8s-autoscaling",
                f"{env}: no KEDA ScaledObject on the worker's Redis queues",
            )
        )
    for kind in LONG_RUNNING_KINDS:
        for obj in by_kind.get(kind, []):
            selector = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
            covered = any(
                selector.items()
                <= ((p["spec"].get("selector") or {}).get("matchLabels") or {}).items()
                or any(
                    e.get("operator") == "In" and selector.get(e.get("key")) in e.get("values", [])
                    for e in (p["spec"].get("selector") or {}).get("matchExpressions", [])
                )
                for p in by_kind.get("PodDisruptionBudget", [])
            )
            if not covered:
                add(obj, "k8s-pdb", "no PodDisruptionBudget covers it")

    policies = by_kind.get("NetworkPolicy", [])
    if not any(
        p["spec"].get("podSelector") in ({}, None) and "ingress" not in p["spec"] for p in policies
    ):
        found.append(
            Violation(overlay, "k8s-network", f"{env}: no default-deny ingress NetworkPolicy")
        )
    for target in ("whisper", "llm"):
        admitting = [
            rule
            for p in policies
            if (p["spec"].get("podSelector") or {})
            .get("matchLabels", {})
            .get("app.kubernetes.io/name")
            == target
            for rule in p["spec"].get("ingress", [])
        ]
        sources_ok = admitting and all(
            peer.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "worker"}
            and "namespaceSelector" not in peer
            for rule in admitting
            for peer in rule.get("from", [{}])
        )
        if not sources_ok:
            found.append(
                Violation(overlay, "k8s-network", f"{env}: {target} must admit only the worker")
            )
    if ("Service", "backend") not in names:
        found.append(Violation(overlay, "k8s-render", f"{env}: no backend Service"))
    return found


def check_k8s_committed(root: Path) -> list[Violation]:
    """No Secret env file in the tree git tracks (or would track)."""
    found = []
    ignore = root / K8S_DIR / ".gitignore"
    if not ignore.exists() or "secrets.env" not in ignore.read_text():
        found.append(
            Violation(
                _rel(root, ignore), "k8s-no-default-secrets", "secrets.env is not git-ignored"
            )
        )
    for path in (root / K8S_DIR).rglob("*.yaml"):
        text = path.read_text()
        if re.search(r"^kind: Secret$", text, flags=re.M):
            found.append(
                Violation(
                    _rel(root, path),
                    "k8s-no-default-secrets",
                    "a Secret is committed: generate it (`inv k8s.secrets`)",
                )
            )
    return found


def check_kubernetes(root: Path, envs: Iterable[str] | None = None) -> list[Violation]:
    keda = keda_schemas()
    found = check_k8s_committed(root)
    for env in envs or k8s_overlays(root):
        try:
            objects = render_k8s(root, env)
        except ConfigError as exc:
            overlay = _rel(root, root / K8S_DIR / "overlays" / env / "kustomization.yaml")
            found.append(Violation(overlay, "k8s-render", f"{env}: {exc}"))
            continue
        found += check_k8s_objects(root, env, objects, keda)
    return found


# --- all of it --------------------------------------------------------------------------------


def check_environments(root: Path, envs: Iterable[str] = ENVIRONMENTS) -> list[Violation]:
    found: list[Violation] = []
    with tempfile.TemporaryDirectory() as tmp:
        for env in envs:
            values = throwaway_env(env)
            env_file = write_env_file(env, values, Path(tmp))
            try:
                config = merged_config(root, env, env_file)
            except ConfigError as exc:
                overlay = _rel(root, root / COMPOSE_DIR / f"compose.{env}.yaml")
                found.append(Violation(overlay, "compose-config", f"{env}: {exc}"))
                continue
            found += check_config(root, env, config, values)
            found += check_required_secrets(root, env, values)
    return found


CHECKS: dict[str, Callable[[Path], list[Violation]]] = {
    "compose-spec": check_schema,
    "hadolint": check_hadolint,
    "dockerfiles": check_dockerfiles,
    "dockerignore": check_dockerignore,
    "environments": check_environments,
    "kubernetes": check_kubernetes,
}


def run(root: Path, only: Iterable[str] = ()) -> Iterator[tuple[str, list[Violation]]]:
    for name, check in CHECKS.items():
        if only and name not in only:
            continue
        yield name, sorted(set(check(root)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--only", action="append", choices=list(CHECKS), default=[])
    parser.add_argument("--rules", action="store_true", help="list the rules and exit")
    args = parser.parse_args(argv)
    if args.rules:
        for rule, meaning in RULES.items():
            print(f"{rule:28} {meaning}")
        return 0
    failed = 0
    for name, violations in run(args.root, args.only):
        print(f"{name}: {'ok' if not violations else f'{len(violations)} problem(s)'}")
        for violation in violations:
            print(f"  {violation}")
        failed += len(violations)
    if failed:
        print(f"\n{failed} problem(s); what each rule means: python scripts/infra_check.py --rules")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
