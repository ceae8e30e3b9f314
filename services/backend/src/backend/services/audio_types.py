"""Recognise audio containers by their first bytes; the client's Content-Type is only a hint.

Only formats the whisper service decodes are accepted. The returned extension is ours, never
the client's, so a stored file name cannot smuggle a path or a misleading suffix.
"""

from __future__ import annotations

from dataclasses import dataclass

SNIFF_BYTES = 64
"""Bytes needed to recognise every supported format."""


@dataclass(frozen=True)
class AudioType:
    extension: str
    mime: str


WAV = AudioType("wav", "audio/wav")
MP3 = AudioType("mp3", "audio/mpeg")
OGG = AudioType("ogg", "audio/ogg")
FLAC = AudioType("flac", "audio/flac")
M4A = AudioType("m4a", "audio/mp4")
MP4 = AudioType("mp4", "video/mp4")
WEBM = AudioType("webm", "audio/webm")
MATROSKA = AudioType("mka", "audio/x-matroska")

SUPPORTED = "WAV, MP3, OGG (Vorbis/Opus), FLAC, M4A/MP4 and WebM"

# ISO base media brands that carry audio-only content.
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 Layer I-III frame header (frame sync, valid layer and bitrate)."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0b11
    # 01 is a reserved version, layer 00 is AAC/ADTS (not MP3), 1111/11 are invalid values.
    return version != 0b01 and layer != 0 and bitrate != 0b1111 and sample_rate != 0b11


def sniff(head: bytes) -> AudioType | None:
    """The audio type of a file starting with `head`, or None when it is not one we accept."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[:4] == b"fLaC":
        return FLAC
    if head[:4] == b"OggS":
        return OGG
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return M4A if head[8:12] in _AUDIO_BRANDS else MP4
    if head[:4] == b"\x1a\x45\xdf\xa3":
        # EBML: the DocType element says whether it is WebM or generic Matroska.
        return WEBM if b"webm" in head[:SNIFF_BYTES] else MATROSKA
    if head[:3] == b"ID3":
        # An ID3v2 tag precedes MP3 frames (and, rarely, FLAC); MP3 is the common case.
        return MP3
    if _is_mpeg_audio_frame(head):
        return MP3
    return None
