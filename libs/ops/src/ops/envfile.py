"""`.env.<env>` files: strict parsing, safe writing, validation against the schema.

python-dotenv only warns about lines it cannot parse and then drops them, which would let a
typo fall back to a default silently. Here every line must parse, and errors carry line numbers.
"""

from __future__ import annotations

import io
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dotenv.main import resolve_variables
from dotenv.parser import parse_stream

from ops import project
from ops.errors import OpsError


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}"


@dataclass(frozen=True)
class Scan:
    values: dict[str, str]
    lines: dict[str, int]
    problems: list[Problem] = field(default_factory=list)


def path_for(env: str) -> Path:
    return project.root() / f".env.{env}"


def scan(path: Path) -> Scan:
    """Read every binding of an env file, collecting malformed and duplicate lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        env = path.name.removeprefix(".env.")
        raise OpsError(
            f"{path.name} does not exist", f"create it: `uv run inv env.setup --env {env}`"
        ) from None
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            shown = binding.original.string.strip()
            problems.append(Problem(f"not KEY=VALUE: {shown!r}", line))
        elif binding.key is not None:
            if binding.key in lines:
                problems.append(
                    Problem(f"{binding.key} repeats line {lines[binding.key]}", line, binding.key)
                )
            values[binding.key] = binding.value or ""
            lines[binding.key] = line
    return Scan(values, lines, problems)


def parse(path: Path) -> dict[str, str]:
    """Every key of an env file, raw; raises OpsError naming the first malformed line."""
    result = scan(path)
    for problem in result.problems:
        if problem.key is None:
            raise OpsError(f"{path.name} {problem}", f"fix or remove line {problem.line} of {path}")
    return result.values


def interpolate(values: dict[str, str]) -> dict[str, str]:
    """Expand `${KEY}` references between keys, the way compose and python-dotenv do."""
    resolved = resolve_variables(values.items(), override=True)
    return {key: value or "" for key, value in resolved.items()}


def load(env: str) -> dict[str, str]:
    """The env file's values with references expanded: what the services' processes get."""
    return interpolate(parse(path_for(env)))


def read_ports(path: Path) -> dict[str, int]:
    """The *_PORT keys of an env file, when it exists; bad values are errors."""
    if not path.exists():
        return {}
    ports: dict[str, int] = {}
    for key, value in parse(path).items():
        if not key.endswith("_PORT"):
            continue
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise OpsError(
                f"{path.name}: {key}={value!r} is not a port number", f"set {key} to 1-65535"
            )
        ports[key] = int(value)
    return ports


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temporary file in the same directory: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(mode)  # O_CREAT's mode is filtered by the umask
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class SetupReport:
    path: Path
    created: bool
    added: list[str]
    replaced: list[str]
    generated: list[str]
    kept: list[str]


def generate_secret() -> str:
    # URL-safe so it can sit in DATABASE_URL/REDIS_URL without escaping.
    return secrets.token_urlsafe(32)


def setup(env: str, *, force: bool = False) -> SetupReport:
    """Create or complete `.env.<env>`; existing values are kept unless `force`."""
    from ops import environments, envschema

    environments.validate(env)
    path = path_for(env)
    existing = parse(path) if path.exists() else {}
    defaults = envschema.defaults_for(env)
    secret_keys = set(envschema.secret_keys())

    values: dict[str, str] = {}
    added: list[str] = []
    replaced: list[str] = []
    generated: list[str] = []
    kept: list[str] = []
    for key in envschema.all_keys():
        if key in existing and not force:
            values[key] = existing[key]
            kept.append(key)
            continue
        values[key] = generate_secret() if key in secret_keys else defaults[key]
        (replaced if key in existing else added).append(key)
        if key in secret_keys:
            generated.append(key)
    unknown = {k: v for k, v in existing.items() if k not in values}

    text = render(env, values, unknown)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
    return SetupReport(path, not existing, added, replaced, generated, kept)


def _quote(value: str) -> str:
    if value == "" or any(ch in value for ch in " #'\"\\\t"):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return value


def render(env: str, values: dict[str, str], unknown: dict[str, str]) -> str:
    lines = [
        f"# Settings of the {env} environment. Made by `uv run inv env.setup --env {env}`;",
        "# keys are documented in .env.example. Keep this file private (mode 0600).",
    ]
    lines += [f"{key}={_quote(value)}" for key, value in values.items()]
    if unknown:
        lines += ["", "# Keys the schema does not know (kept; `inv env.check` reports them):"]
        lines += [f"{key}={_quote(value)}" for key, value in unknown.items()]
    return "\n".join(lines) + "\n"


def check(env: str) -> list[Problem]:
    """Everything wrong with `.env.<env>`; an empty list means it is usable."""
    from pydantic import ValidationError

    from ops import environments, envschema

    environments.validate(env)
    path = path_for(env)
    result = scan(path)
    problems = list(result.problems)
    known = envschema.all_keys()

    missing = [key for key in known if key not in result.values]
    if missing:
        problems.append(
            Problem(f"missing keys: {', '.join(missing)} (`inv env.setup --env {env}` adds them)")
        )
    values = interpolate(result.values)
    tuning = envschema.tuning_keys()
    for name in result.values:
        if name in tuning:
            reason = envschema.validate_tuning(tuning[name], values[name])
            if reason:
                problems.append(Problem(f"{name}: {reason}", result.lines[name], name))
        elif name not in known:
            problems.append(
                Problem(f"unknown key {name} (typo? see .env.example)", result.lines[name], name)
            )

    present = {k.lower(): v for k, v in values.items() if k in known}
    try:
        envschema.StackSettings.model_validate(present)
    except ValidationError as exc:
        for error in exc.errors():
            key = str(error["loc"][0]).upper() if error["loc"] else None
            if key in missing:
                continue
            shown = values.get(key or "", "")
            problems.append(
                Problem(f"{key}={shown!r}: {error['msg']}", result.lines.get(key or ""), key)
            )

    if values.get("APP_ENV", env) != env:
        problems.append(
            Problem(
                f"APP_ENV is {values['APP_ENV']!r} in {path.name}",
                result.lines["APP_ENV"],
                "APP_ENV",
            )
        )
    if env != "dev":
        problems += _weak_secrets(result, envschema.secret_keys())
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            problems.append(
                Problem(f"{path.name} is readable by others (mode {mode:o}): chmod 600 {path.name}")
            )
    return problems


def _weak_secrets(result: Scan, keys: Iterable[str]) -> list[Problem]:
    from ops.envschema import MIN_SECRET_LENGTH, PLACEHOLDERS

    problems = []
    for key in keys:
        value = result.values.get(key)
        if value is None:
            continue
        line = result.lines[key]
        if value.lower() in PLACEHOLDERS:
            problems.append(
                Problem(
                    f"{key} is a placeholder: generate one with `inv env.setup --force`", line, key
                )
            )
        elif len(value) < MIN_SECRET_LENGTH or len(set(value)) < 8:
            problems.append(
                Problem(
                    f"{key} is weak: use at least {MIN_SECRET_LENGTH} random characters", line, key
                )
            )
    return problems


def prepare(env: str) -> dict[str, str]:
    """What `inv up` needs, whatever the runtime: the env file's values, interpolated, after
    checking it. dev's file is created on first use and completed when the schema grew;
    staging and prod are never configured implicitly."""
    path = path_for(env)
    if not path.exists():
        if env != "dev":
            raise OpsError(
                f"{path.name} does not exist; {env} is never configured implicitly",
                f"create it with `uv run inv env.setup --env {env}`, review it, then `inv up`",
            )
        setup(env)
        print(f"created {path.name} with generated secrets (mode 0600)")  # noqa: T201
    elif env == "dev":
        # A newer template may have added keys: complete dev's file, never overwriting.
        from ops import envschema

        scanned = scan(path)
        if not scanned.problems and set(envschema.all_keys()) - set(scanned.values):
            report = setup(env)
            print(f"added {', '.join(report.added)} to {path.name}")  # noqa: T201
    problems = check(env)
    if problems:
        listing = "\n  ".join(str(p) for p in problems)
        raise OpsError(
            f"{path.name} has {len(problems)} problem(s):\n  {listing}",
            f"fix them (`uv run inv env.check --env {env}` re-checks)",
        )
    return load(env)
