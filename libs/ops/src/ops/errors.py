"""The one error type the ops layer raises: what went wrong, and what to do about it."""

from __future__ import annotations

from invoke.exceptions import Exit


class OpsError(Exit):
    """A failure the user can act on.

    Subclassing invoke's `Exit` means a task that lets this escape prints the message (no
    traceback) and exits non-zero, so task bodies need no try/except boilerplate.
    """

    def __init__(self, problem: str, fix: str = "", code: int = 1) -> None:
        self.problem = problem
        self.fix = fix
        message = f"error: {problem}" + (f"\n  fix: {fix}" if fix else "")
        super().__init__(message, code=code)

    def __str__(self) -> str:
        return str(self.message)
