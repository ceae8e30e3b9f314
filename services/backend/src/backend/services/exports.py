"""A meeting as downloadable files: transcript subtitles (SRT, WebVTT), plain text, JSON and
Markdown notes, with a file name safe on every operating system.

Everything is built from the meeting document (`MeetingOut`), the same one the API serves, so
an export can never disagree with what `GET /api/v1/meetings/{id}` shows. Segments whose text
is empty are left out of the subtitle formats: a cue without text is invalid in SRT.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, get_args

from backend.schemas import MeetingOut, Segment

TranscriptFormat = Literal["srt", "vtt", "txt", "json"]
TRANSCRIPT_FORMATS: tuple[str, ...] = get_args(TranscriptFormat)

MEDIA_TYPES = {
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
}

_SLUG_MAX = 60


@dataclass(frozen=True)
class Export:
    body: str
    media_type: str
    filename: str


def safe_filename(title: str, created_at: str, extension: str) -> str:
    """`weekly-standup-2025-01-31.srt`: ASCII letters, digits and dashes only, so no title can
    smuggle a path, a quote or a header break into Content-Disposition."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:_SLUG_MAX].strip("-")
    day = created_at[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", created_at[:10]) else ""
    stem = "-".join(part for part in (slug or "meeting", day) if part)
    return f"{stem}.{extension}"


def content_disposition(filename: str) -> str:
    return f'attachment; filename="{filename}"'


def clock(seconds: float, separator: str) -> str:
    """HH:MM:SS<separator>mmm, rounded to the millisecond (SRT uses ",", WebVTT ".")."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _one_line(text: str) -> str:
    # A blank line ends a cue in both subtitle formats; cue text stays on one line.
    return " ".join(text.split())


def _cues(segments: list[Segment]) -> Iterator[Segment]:
    for segment in segments:
        if _one_line(segment.text):
            yield segment


def _srt(segments: list[Segment]) -> str:
    blocks = [
        f"{number}\n{clock(s.start, ',')} --> {clock(max(s.end, s.start), ',')}\n"
        f"{_one_line(s.text)}\n"
        for number, s in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def _vtt_text(text: str) -> str:
    # WebVTT cue text is markup: & and < must be escaped, and "-->" may not appear at all.
    escaped = _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped


def _vtt(segments: list[Segment]) -> str:
    blocks = [
        f"{clock(s.start, '.')} --> {clock(max(s.end, s.start), '.')}\n{_vtt_text(s.text)}\n"
        for s in _cues(segments)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def _txt(meeting: MeetingOut, segments: list[Segment]) -> str:
    lines = [meeting.title, ""]
    lines += [f"[{clock(s.start, '.')[:8]}] {_one_line(s.text)}" for s in _cues(segments)]
    return "\n".join(lines) + "\n"


def _json(meeting: MeetingOut) -> str:
    transcript = meeting.transcript
    assert transcript is not None
    document = {
        "meeting_id": str(meeting.id),
        "title": meeting.title,
        "created_at": meeting.created_at.isoformat(),
        **transcript.model_dump(mode="json"),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def transcript_export(meeting: MeetingOut, fmt: TranscriptFormat) -> Export:
    """The transcript in `fmt`; the meeting must have one (checked by the caller)."""
    assert meeting.transcript is not None
    segments = meeting.transcript.segments
    if fmt == "srt":
        body = _srt(segments)
    elif fmt == "vtt":
        body = _vtt(segments)
    elif fmt == "txt":
        body = _txt(meeting, segments)
    else:
        body = _json(meeting)
    created = meeting.created_at.isoformat()
    return Export(body, MEDIA_TYPES[fmt], safe_filename(meeting.title, created, fmt))


def _md_escape(text: str) -> str:
    """Keep a title or transcript line from turning into Markdown structure."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", _one_line(text))


def notes_markdown(meeting: MeetingOut) -> Export:
    """Meeting notes: title, date, summary, action items, topics, timestamped transcript."""
    lines = [f"# {_md_escape(meeting.title)}", ""]
    lines.append(f"Date: {meeting.created_at.strftime('%Y-%m-%d %H:%M %Z').strip()}")
    if meeting.transcript is not None:
        lines.append(f"Duration: {clock(meeting.transcript.audio_seconds, '.')[:8]}")
    lines += ["", "## Summary", "", _md_escape(meeting.summary or "") or "_No summary._", ""]
    lines += ["## Action items", ""]
    if meeting.action_items:
        for item in meeting.action_items:
            details = [f"owner: {_md_escape(item.owner)}" if item.owner else "owner: unassigned"]
            if item.due:
                details.append(f"due: {_md_escape(item.due)}")
            lines.append(f"- [ ] {_md_escape(item.text)} ({', '.join(details)})")
    else:
        lines.append("_None found._")
    lines += ["", "## Topics", ""]
    lines += [f"- {_md_escape(topic)}" for topic in meeting.topics] or ["_None found._"]
    lines += ["", "## Transcript", ""]
    segments = list(_cues(meeting.transcript.segments)) if meeting.transcript else []
    # Two trailing spaces: a Markdown line break, so each segment stays on its own line.
    lines += [f"**[{clock(s.start, '.')[:8]}]** {_md_escape(s.text)}  " for s in segments]
    if not segments:
        lines.append("_No speech was recognised._")
    created = meeting.created_at.isoformat()
    body = "\n".join(lines).rstrip() + "\n"
    return Export(body, MEDIA_TYPES["md"], safe_filename(meeting.title, created, "md"))
