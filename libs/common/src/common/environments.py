"""The environments a stack runs as; import-light, so CLIs can validate names quickly."""

from __future__ import annotations

from typing import Literal

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "staging", "prod")
