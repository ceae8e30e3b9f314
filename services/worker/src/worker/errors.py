"""How a pipeline step can end other than by succeeding; the task decides what follows."""

from __future__ import annotations


class TransientError(Exception):
    """A dependency is unreachable or overloaded: retry with backoff (bounded)."""


class PermanentError(Exception):
    """Retrying cannot help (bad audio, rejected input): fail the meeting with this reason."""


class MeetingGoneError(Exception):
    """The meeting was deleted while queued or in progress: stop quietly."""


class MeetingFinishedError(Exception):
    """The meeting is already done or failed (a redelivered message): stop quietly."""
