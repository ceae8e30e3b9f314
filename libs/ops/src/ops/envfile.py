"""Reading `.env.<env>` files strictly: a malformed line is an error with its line number.

python-dotenv only warns about lines it cannot parse and then drops them, which would let a
typo silently fall back to a default. Here every line must parse.
"""

from __future__ import annotations

import io
from pathlib import Path

from dotenv.parser import parse_stream

from ops import project
from ops.errors import OpsError


def path_for(env: str) -> Path:
    return project.root() / f".env.{env}"


def parse(path: Path) -> dict[str, str]:
    """Every key of an env file; raises OpsError naming the first malformed line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        env = path.suffix.removeprefix(".")
        raise OpsError(
            f"{path} does not exist", f"create it: `inv env.setup --env {env}`"
        ) from None
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            raise OpsError(
                f"{path.name} line {line} is not KEY=VALUE: {binding.original.string.strip()!r}",
                f"fix or remove line {line} of {path}",
            )
        if binding.key is not None:
            values[binding.key] = binding.value or ""
    return values


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
