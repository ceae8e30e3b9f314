"""What the upload page checks before sending, taken from what the API enforces.

The API decides by the file's first bytes (services/audio_types.py); the browser only knows
the name and the type it guesses from it, so the page accepts a file when either looks like
audio the API takes. The page's check saves a long upload that would be refused; the API's
check is the one that counts.
"""

from __future__ import annotations

from backend.services.audio_types import FLAC, M4A, MATROSKA, MP3, MP4, OGG, WAV, WEBM
from backend.services.uploads import MAX_FIELD_BYTES

_SNIFFED = (WAV, MP3, OGG, FLAC, M4A, MP4, WEBM, MATROSKA)
# Other names the same containers go by.
_ALIASES = ("oga", "opus", "weba", "m4b", "wave")

ACCEPTED_EXTENSIONS: tuple[str, ...] = tuple(
    sorted({f".{kind.extension}" for kind in _SNIFFED} | {f".{alias}" for alias in _ALIASES})
)
ACCEPTED_TYPES: tuple[str, ...] = tuple(
    sorted(
        {kind.mime for kind in _SNIFFED}
        | {"audio/x-wav", "audio/wave", "audio/mp3", "audio/x-flac", "audio/x-m4a", "audio/opus"}
        | {"video/webm"}
    )
)
VOCABULARY_MAX = MAX_FIELD_BYTES // 4
"""Characters: the API's text-field limit is in bytes, and UTF-8 takes up to 4 per character."""
