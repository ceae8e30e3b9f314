"""How the embed step cuts a transcript into chunks: whole segments, ~60 words, in order."""

from __future__ import annotations

from worker.steps.embed import CHUNK_WORDS, chunk_segments


def test_segments_are_grouped_whole_and_keep_their_first_time() -> None:
    words = " ".join(["word"] * 25)
    segments = [(i, i * 10.0, i * 10.0 + 9.0, f"{words} {i}.") for i in range(7)]
    chunks = chunk_segments(segments)
    # 26 words a segment: three make a chunk (>= 60 words), the last one holds the rest.
    assert [c.segment_position for c in chunks] == [0, 3, 6]
    assert [(c.start_seconds, c.end_seconds) for c in chunks] == [(0, 29), (30, 59), (60, 69)]
    assert all(len(c.text.split()) >= CHUNK_WORDS for c in chunks[:-1])
    assert " ".join(c.text for c in chunks).split() == " ".join(s[3] for s in segments).split()


def test_blank_segments_are_skipped_and_no_segments_no_chunks() -> None:
    assert chunk_segments([]) == []
    chunks = chunk_segments([(0, 0.0, 1.0, "  "), (1, 1.0, 2.0, "Hello there.")])
    assert [(c.segment_position, c.text) for c in chunks] == [(1, "Hello there.")]
