"""One environment, parsed once from `--env` and handed down to everything a task does.

Tasks call `Environment.parse(env)`; from there on nothing re-validates the name or
re-derives where the environment keeps its files: the object knows its ports, its env file,
its data, backups and models directories, and reads its settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.environments import ENVIRONMENTS, default_ports
from common.environments import Environment as EnvName
from ops import project
from ops.errors import OpsError

PROTECTED: frozenset[EnvName] = frozenset({"staging", "prod"})
"""Environments that are never configured implicitly and get a safety backup before a
schema change."""


@dataclass(frozen=True)
class Environment:
    name: EnvName
    root: Path

    @classmethod
    def parse(cls, name: str) -> Environment:
        """The environment `name` of this checkout; a clear error for anything else."""
        for known in ENVIRONMENTS:
            if name == known:
                return cls(known, project.root())
        raise OpsError(
            f"unknown environment {name!r}",
            f"use --env with one of: {', '.join(ENVIRONMENTS)}",
            code=2,
        )

    def __str__(self) -> str:
        return self.name

    @property
    def protected(self) -> bool:
        return self.name in PROTECTED

    @property
    def env_file(self) -> Path:
        """`.env.<name>`: this environment's settings (git-ignored, mode 0600)."""
        return self.root / f".env.{self.name}"

    @property
    def data_dir(self) -> Path:
        """State of the local runtime: databases, logs, media, sockets."""
        return self.root / ".data" / self.name

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups" / self.name

    @property
    def backup_status_dir(self) -> Path:
        """Where monitoring reads how the backups go (times and sizes, no secrets). Not inside
        `backups_dir`, which is private (0700): the worker's exporter may run as another user."""
        return self.root / "backups" / "status" / self.name

    @property
    def default_ports(self) -> dict[str, int]:
        return default_ports(self.name)

    def path(self, value: str) -> Path:
        """A path setting (MEDIA_DIR, WHISPER_MODEL_DIR) as the services resolve it: relative
        ones from the repository root."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    def values(self) -> dict[str, str]:
        """The env file's values with `${KEY}` references expanded: what the services get.
        A missing or malformed file is an error that says what to do."""
        from ops.env import file

        return file.interpolate(file.parse(self.env_file))

    def required(self, values: Mapping[str, str], key: str) -> str:
        """`values[key]`, or an error saying how to add a key a newer release introduced."""
        value = values.get(key)
        if not value:
            raise OpsError(
                f"{key} is not set in {self.env_file.name} (written by an older release?)",
                f"`uv run inv env.setup --env {self.name}` adds it and keeps every other value",
            )
        return value

    def settings(self) -> dict[str, str]:
        """The env file's values over the schema's defaults for this environment, expanded:
        what a setting would be even before `.env.<name>` exists."""
        from ops.env import file, schema

        values = schema.defaults_for(self)
        if self.env_file.exists():
            values |= file.parse(self.env_file)
        return file.interpolate(values)
