"""The contract between the API and the worker: task names and the queues they run on.

The backend enqueues by name (`send_task`) and never imports the worker; the worker imports
these constants so both sides agree. Each step has its own queue so transcription (CPU
heavy) and analysis (waits on the llm) can be scaled independently.
"""

from __future__ import annotations

PROCESS_MEETING = "meetings.process"
"""Entry point: starts transcribe -> analyze -> index for one meeting id."""
TRANSCRIBE = "meetings.transcribe"
ANALYZE = "meetings.analyze"
INDEX = "meetings.index"
EMBED = "meetings.embed"
"""After the meeting is done: its transcript chunks embedded for search by meaning (optional:
a failure leaves the meeting done and keyword-searchable; `inv search.reindex` redoes it)."""
SWEEP = "meetings.sweep"
"""Periodic, sent by the workers themselves: queues again the meetings whose task was lost."""

QUEUE_PIPELINE = "pipeline"
QUEUE_TRANSCRIBE = "transcribe"
QUEUE_ANALYZE = "analyze"
ALL_QUEUES = (QUEUE_PIPELINE, QUEUE_TRANSCRIBE, QUEUE_ANALYZE)

TASK_ROUTES: dict[str, dict[str, str]] = {
    PROCESS_MEETING: {"queue": QUEUE_PIPELINE},
    TRANSCRIBE: {"queue": QUEUE_TRANSCRIBE},
    ANALYZE: {"queue": QUEUE_ANALYZE},
    INDEX: {"queue": QUEUE_PIPELINE},
    EMBED: {"queue": QUEUE_ANALYZE},
    SWEEP: {"queue": QUEUE_PIPELINE},
}
