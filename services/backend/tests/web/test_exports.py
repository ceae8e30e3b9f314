"""Exports: transcript files read back with real subtitle parsers, notes, and the recording
streamed with Range requests, against real uvicorn and Postgres."""

from __future__ import annotations

import html
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import srt
import webvtt
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from backend.services.exports import safe_filename
from meetings.models import ActionItem, Meeting, Summary, Transcript, TranscriptSegment
from mi_testing.objectstore import MediaUnderTest

# Times that need real rounding, an hour boundary, and texts that would break naive writers:
# markup characters, an arrow, a line break inside a segment, non-ASCII.
SEGMENTS = [
    (0.0, 1.2345, "Alice will send the budget report by Friday."),
    (1.5, 4.0006, "Bob said <b>no</b> & then --> yes"),
    (59.999, 61.5, "Über café\nsecond line"),
    (3599.9995, 3661.25, "An hour in."),
    (3700.0, 3700.0, "   "),  # empty after trimming: not a cue
]
CREATED = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def add_meeting(
    database_url: str,
    *,
    status: str = "done",
    title: str = "Budget sync",
    with_transcript: bool = True,
    with_summary: bool = True,
    media_filename: str | None = None,
    error: str | None = None,
) -> uuid.UUID:
    meeting_id = uuid.uuid4()
    engine = create_engine(database_url)
    with Session(engine) as session:
        session.add(
            Meeting(
                id=meeting_id,
                title=title,
                status=status,
                error=error,
                media_filename=media_filename or f"{meeting_id.hex}.wav",
                original_filename="meeting.wav",
                content_type="audio/wav",
                size_bytes=1234,
                created_at=CREATED,
            )
        )
        session.flush()
        if with_transcript:
            transcript = Transcript(
                meeting_id=meeting_id,
                text=" ".join(text for _, _, text in SEGMENTS),
                language="en",
                engine="test",
                model="test",
                audio_seconds=3700.0,
                processing_seconds=1.0,
            )
            session.add(transcript)
            session.flush()
            for position, (start, end, text) in enumerate(SEGMENTS):
                session.add(
                    TranscriptSegment(
                        transcript_id=transcript.id,
                        position=position,
                        start_seconds=start,
                        end_seconds=end,
                        text=text,
                    )
                )
        if with_summary:
            session.add(
                Summary(
                    meeting_id=meeting_id,
                    text="The budget report is due Friday.",
                    topics=["budget", "design review"],
                    engine="t",
                    model="t",
                )
            )
            for position, (text, owner, due) in enumerate(
                [("Send the budget report", "Alice", "Friday"), ("Review the design", None, None)]
            ):
                session.add(
                    ActionItem(
                        meeting_id=meeting_id, position=position, text=text, owner=owner, due=due
                    )
                )
        session.commit()
    engine.dispose()
    return meeting_id


def spoken_cues() -> list[tuple[float, float, str]]:
    """The segments an export must contain: non-empty, text on one line."""
    return [(s, e, " ".join(t.split())) for s, e, t in SEGMENTS if t.strip()]


def ms(seconds: float) -> timedelta:
    return timedelta(milliseconds=round(seconds * 1000))


def attachment_name(reply: httpx.Response) -> str:
    disposition = reply.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    return disposition.split("filename=", 1)[1].strip('"')


# --- transcript formats ---------------------------------------------------------------------


def test_srt_parses_and_matches_the_stored_segments(
    client: httpx.Client, database_url: str
) -> None:
    meeting_id = add_meeting(database_url)
    reply = client.get(f"/api/v1/meetings/{meeting_id}/transcript", params={"format": "srt"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/x-subrip; charset=utf-8"
    assert attachment_name(reply) == "budget-sync-2025-03-14.srt"

    cues = list(srt.parse(reply.text))
    expected = spoken_cues()
    assert [c.index for c in cues] == list(range(1, len(expected) + 1))
    assert [(c.start, c.end, c.content) for c in cues] == [
        (ms(s), ms(e), t) for s, e, t in expected
    ]
    assert "01:00:00,000 --> 01:01:01,250" in reply.text  # 3599.9995 rounds up to the hour


def test_vtt_parses_and_matches_the_stored_segments(
    client: httpx.Client, database_url: str
) -> None:
    meeting_id = add_meeting(database_url)
    reply = client.get(f"/api/v1/meetings/{meeting_id}/transcript", params={"format": "vtt"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/vtt; charset=utf-8"
    assert attachment_name(reply) == "budget-sync-2025-03-14.vtt"
    assert reply.text.startswith("WEBVTT\n")

    captions = webvtt.from_buffer(io.StringIO(reply.text)).captions
    expected = spoken_cues()
    assert len(captions) == len(expected)
    for caption, (start, end, text) in zip(captions, expected, strict=True):
        assert timedelta(milliseconds=caption.start_time.in_milliseconds()) == ms(start)
        assert timedelta(milliseconds=caption.end_time.in_milliseconds()) == ms(end)
        # WebVTT cue text is markup: the raw text carries escapes, never a live tag or arrow.
        assert "<b>" not in caption.raw_text and "-->" not in caption.raw_text
        assert html.unescape(caption.raw_text) == text


def test_txt_and_json_carry_every_segment(client: httpx.Client, database_url: str) -> None:
    meeting_id = add_meeting(database_url)
    txt = client.get(f"/api/v1/meetings/{meeting_id}/transcript", params={"format": "txt"})
    assert txt.status_code == 200
    assert txt.headers["content-type"] == "text/plain; charset=utf-8"
    lines = txt.text.splitlines()
    assert lines[0] == "Budget sync"
    assert lines[2:] == [
        "[00:00:00] Alice will send the budget report by Friday.",
        "[00:00:01] Bob said <b>no</b> & then --> yes",
        "[00:00:59] Über café second line",
        "[01:00:00] An hour in.",
    ]

    reply = client.get(f"/api/v1/meetings/{meeting_id}/transcript", params={"format": "json"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert attachment_name(reply).endswith(".json")
    document = json.loads(reply.text)
    assert document["meeting_id"] == str(meeting_id)
    assert [(s["start"], s["end"], s["text"]) for s in document["segments"]] == SEGMENTS


def test_notes_markdown_has_summary_actions_topics_and_transcript(
    client: httpx.Client, database_url: str
) -> None:
    meeting_id = add_meeting(database_url, title="Q3 *planning* [draft]")
    reply = client.get(f"/api/v1/meetings/{meeting_id}/notes.md")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/markdown; charset=utf-8"
    assert attachment_name(reply) == "q3-planning-draft-2025-03-14.md"
    notes = reply.text
    assert notes.startswith("# Q3 \\*planning\\* \\[draft\\]\n")
    assert "Date: 2025-03-14 09:30 UTC" in notes
    assert "## Summary\n\nThe budget report is due Friday." in notes
    assert "- [ ] Send the budget report (owner: Alice, due: Friday)" in notes
    assert "- [ ] Review the design (owner: unassigned)" in notes
    assert "## Topics\n\n- budget\n- design review" in notes
    assert "**[00:00:00]** Alice will send the budget report by Friday." in notes
    assert "**[01:00:00]** An hour in." in notes


def test_transcript_is_served_while_analyzing_but_notes_wait_for_done(
    client: httpx.Client, database_url: str
) -> None:
    meeting_id = add_meeting(database_url, status="analyzing", with_summary=False)
    srt_reply = client.get(f"/api/v1/meetings/{meeting_id}/transcript?format=srt")
    assert srt_reply.status_code == 200
    notes = client.get(f"/api/v1/meetings/{meeting_id}/notes.md")
    assert notes.status_code == 409
    assert "analyzing" in notes.json()["detail"] and "`done`" in notes.json()["detail"]


@pytest.mark.parametrize("status", ["queued", "transcribing"])
def test_no_transcript_yet_is_409_saying_when_to_retry(
    client: httpx.Client, database_url: str, status: str
) -> None:
    meeting_id = add_meeting(database_url, status=status, with_transcript=False, with_summary=False)
    reply = client.get(f"/api/v1/meetings/{meeting_id}/transcript?format=vtt")
    assert reply.status_code == 409
    detail = reply.json()["detail"]
    assert f"still {status}" in detail and "Poll GET" in detail


def test_failed_meeting_is_409_with_its_reason(client: httpx.Client, database_url: str) -> None:
    meeting_id = add_meeting(
        database_url,
        status="failed",
        with_transcript=False,
        with_summary=False,
        error="transcribe: audio could not be decoded",
    )
    for path in ("transcript?format=srt", "notes.md"):
        reply = client.get(f"/api/v1/meetings/{meeting_id}/{path}")
        assert reply.status_code == 409
        detail = reply.json()["detail"]
        assert "could not be decoded" in detail and "upload the recording again" in detail


def test_unknown_format_is_422_listing_the_formats(client: httpx.Client, database_url: str) -> None:
    meeting_id = add_meeting(database_url)
    reply = client.get(f"/api/v1/meetings/{meeting_id}/transcript?format=docx")
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    for name in ("srt", "vtt", "txt", "json"):
        assert f"'{name}'" in detail


def test_missing_meeting_is_404_everywhere(client: httpx.Client) -> None:
    missing = uuid.uuid4()
    for path in ("transcript?format=srt", "notes.md", "audio"):
        reply = client.get(f"/api/v1/meetings/{missing}/{path}")
        assert reply.status_code == 404
        assert str(missing) in reply.json()["detail"]


def test_exports_need_the_token(anonymous: httpx.Client, database_url: str) -> None:
    meeting_id = add_meeting(database_url)
    for path in ("transcript?format=srt", "notes.md", "audio"):
        reply = anonymous.get(f"/api/v1/meetings/{meeting_id}/{path}")
        assert reply.status_code == 401


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Budget sync", "budget-sync-2025-03-14.srt"),
        ('../../etc/passwd "x"\r\nSet-Cookie: a=b', "etc-passwd-x-set-cookie-a-b-2025-03-14.srt"),
        ("Réunion d'équipe", "reunion-d-equipe-2025-03-14.srt"),
        ("会议", "meeting-2025-03-14.srt"),
        ("x" * 300, "x" * 60 + "-2025-03-14.srt"),
    ],
)
def test_file_names_are_safe(title: str, expected: str) -> None:
    assert safe_filename(title, CREATED.isoformat(), "srt") == expected


def test_a_hostile_title_cannot_break_the_header(client: httpx.Client, database_url: str) -> None:
    meeting_id = add_meeting(database_url, title='a"; filename=evil.exe; x="')
    reply = client.get(f"/api/v1/meetings/{meeting_id}/transcript?format=txt")
    assert attachment_name(reply) == "a-filename-evil-exe-x-2025-03-14.txt"


# --- the recording ---------------------------------------------------------------------------


def test_audio_streams_with_range_requests(
    client: httpx.Client, database_url: str, media: MediaUnderTest, wav: bytes
) -> None:
    meeting_id = add_meeting(database_url)
    media.put(f"{meeting_id.hex}.wav", wav)
    url = f"/api/v1/meetings/{meeting_id}/audio"

    whole = client.get(url)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == wav

    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(wav)}"
    assert part.content == wav[100:200]

    tail = client.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206
    assert tail.content == wav[-50:]

    beyond = client.get(url, headers={"Range": f"bytes={len(wav) + 10}-"})
    assert beyond.status_code == 416

    head = client.head(url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(wav)


def test_audio_whose_file_is_gone_says_so(client: httpx.Client, database_url: str) -> None:
    meeting_id = add_meeting(database_url)
    reply = client.get(f"/api/v1/meetings/{meeting_id}/audio")
    assert reply.status_code == 404
    assert "missing from the media directory" in reply.json()["detail"]


def test_audio_never_reads_outside_the_media_dir(
    client: httpx.Client, database_url: str, media: MediaUnderTest
) -> None:
    (media.directory.parent / "secret.wav").write_bytes(b"RIFF")
    meeting_id = add_meeting(database_url, media_filename="../secret.wav")
    reply = client.get(f"/api/v1/meetings/{meeting_id}/audio")
    assert reply.status_code == 404
