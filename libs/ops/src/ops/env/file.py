"""`.env.<env>` files: strict parsing, safe writing, validation against the schema.

python-dotenv only warns about lines it cannot parse and then drops them, which would let a
typo fall back to a default silently. Here every line must parse, and errors carry line numbers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from dotenv.main import resolve_variables
from dotenv.parser import parse_stream

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


def _quote(value: str) -> str:
    if value == "" or any(ch in value for ch in " #'\"\\\t"):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return value


def render(env: str, values: dict[str, str], unknown: dict[str, str]) -> str:
    """The text of `.env.<env>`: `values` in schema order, then keys the schema does not know."""
    lines = [
        f"# Settings of the {env} environment. Made by `uv run inv env.setup --env {env}`;",
        "# keys are documented in .env.example. Keep this file private (mode 0600).",
    ]
    lines += [f"{key}={_quote(value)}" for key, value in values.items()]
    if unknown:
        lines += ["", "# Keys the schema does not know (kept; `inv env.check` reports them):"]
        lines += [f"{key}={_quote(value)}" for key, value in unknown.items()]
    return "\n".join(lines) + "\n"
