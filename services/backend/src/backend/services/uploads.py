"""Stream a multipart upload straight into the recordings store, enforcing size and type.

Starlette's form parser spools the whole body before a route runs, so a 5 GB upload would
be read in full just to be refused. Parsing the stream here lets us stop at the first chunk
past the limit, or at the first bytes that are not audio, and discard what was written. The
store (a directory or a bucket, see libs/recordings) holds at most one part in memory.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from backend.services.audio_types import SNIFF_BYTES, SUPPORTED, AudioType, sniff
from recordings import MediaStore, RecordingWriter, StoreUnavailableError

FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096
MAX_PARTS = 16
"""Parts per form: the file and the few text fields the API reads (title, vocabulary, ...),
with room to spare. Unbounded, a body of tiny fields costs parsing and memory per field."""
# A part's headers are bounded by python-multipart itself (at most 8, each of bounded size).
"""Text fields (title) are tiny; anything bigger is a malformed or hostile request."""
MULTIPART_OVERHEAD = 64 * 1024
"""Headroom above the file limit for boundaries and text fields in a Content-Length check."""


class UploadError(Exception):
    """A client mistake: carries the HTTP status and a message saying how to fix it."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass
class StoredUpload:
    filename: str  # its name in the store
    size: int
    audio_type: AudioType
    original_filename: str | None
    fields: dict[str, str]


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _UploadReceiver:
    """Collects python-multipart callbacks; the async driver acts on them between chunks."""

    def __init__(self) -> None:
        self.part = _Part()
        self.parts = 0
        self._header_name = b""
        self._header_value = b""
        self.file_chunks: list[bytes] = []
        self.file_started = False
        self.file_finished = False
        self.file_filename: str | None = None
        self.fields: dict[str, str] = {}

    # --- python-multipart callbacks (sync, called from parser.write) -----------------
    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadError(
                422,
                f"Too many form fields (max {MAX_PARTS}): send the `{FILE_FIELD}` part and "
                "the few text fields the API reads (title, vocabulary). Nothing was stored.",
            )
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((self._header_name.lower(), self._header_value))
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition = dict(self.part.headers).get(b"content-disposition")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise UploadError(422, "Each multipart part needs a Content-Disposition name.")
        self.part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self.part.filename = options[b"filename"].decode("utf-8", "replace")
        if self._is_file_part():
            if self.file_started:
                raise UploadError(422, f"Send exactly one `{FILE_FIELD}` part per request.")
            self.file_started = True
            self.file_filename = self.part.filename

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file_part():
            self.file_chunks.append(data[start:end])
            return
        self.part.data.extend(data[start:end])
        if len(self.part.data) > MAX_FIELD_BYTES:
            raise UploadError(
                422, f"Form field `{self.part.name}` is too long (max {MAX_FIELD_BYTES} bytes)."
            )

    def on_part_end(self) -> None:
        if self._is_file_part():
            self.file_finished = True
        elif self.part.filename is None:
            self.fields[self.part.name] = self.part.data.decode("utf-8", "replace")
        # Extra file parts under other names are ignored: only `file` is stored.

    def _is_file_part(self) -> bool:
        return self.part.name == FILE_FIELD


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(
            415,
            "Send the recording as multipart/form-data with a `file` part "
            "(e.g. curl -F file=@meeting.wav).",
        )
    return params[b"boundary"]


def _check_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD:
        raise UploadError(413, too_large_message(max_bytes))


def too_large_message(max_bytes: int) -> str:
    return (
        f"The file is larger than the {max_bytes // (1024 * 1024)} MiB limit "
        "(MAX_UPLOAD_MB); split or compress the recording and upload again."
    )


def store_unavailable_message(exc: StoreUnavailableError) -> str:
    return (
        f"The recordings store is unavailable ({exc.problem}), so nothing was stored; "
        "retry the upload in a moment or check `inv health`."
    )


class _Sink:
    """The recording being written; discarded unless `finish()` completes.

    The first SNIFF_BYTES decide the format, hence the name (`<uuid>.<ext>`), before anything
    reaches the store: a bucket cannot rename an object cheaply.
    """

    def __init__(self, store: MediaStore) -> None:
        self.store = store
        self.stem = uuid.uuid4().hex
        self.writer: RecordingWriter | None = None
        self.size = 0
        self.head = bytearray()
        self.audio_type: AudioType | None = None

    async def write(self, chunk: bytes, max_bytes: int) -> None:
        if self.size + len(chunk) > max_bytes:
            raise UploadError(413, too_large_message(max_bytes))
        self.size += len(chunk)
        if self.audio_type is None:
            self.head.extend(chunk)
            if len(self.head) < SNIFF_BYTES:
                return
            self._sniff()
            chunk, self.head = bytes(self.head), bytearray()
        await self._send(chunk)

    async def _send(self, chunk: bytes) -> None:
        try:
            if self.writer is None:
                assert self.audio_type is not None
                name = f"{self.stem}.{self.audio_type.extension}"
                self.writer = self.store.create(name)
            await anyio.to_thread.run_sync(self.writer.write, chunk)
        except StoreUnavailableError as exc:
            raise UploadError(503, store_unavailable_message(exc)) from None

    def _sniff(self) -> None:
        self.audio_type = sniff(bytes(self.head[:SNIFF_BYTES]))
        if self.audio_type is None:
            raise UploadError(415, f"The file is not a supported audio format; upload {SUPPORTED}.")

    async def finish(self) -> str:
        if self.size == 0:
            raise UploadError(422, f"The `{FILE_FIELD}` part is empty; attach the recording.")
        if self.audio_type is None:  # shorter than SNIFF_BYTES
            self._sniff()
            await self._send(bytes(self.head))
        assert self.writer is not None
        try:
            await anyio.to_thread.run_sync(self.writer.commit)
        except StoreUnavailableError as exc:
            raise UploadError(503, store_unavailable_message(exc)) from None
        return self.writer.name

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()


async def receive_upload(request: Request, store: MediaStore, max_bytes: int) -> StoredUpload:
    """Parse the request body, writing the `file` part under a generated name into `store`.

    Raises UploadError (413/415/422, 503 when the store is unavailable) as soon as the input
    is known to be unacceptable; nothing partial survives any failure, including a client
    disconnect.
    """
    boundary = _boundary(request)
    _check_declared_length(request, max_bytes)
    receiver = _UploadReceiver()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    sink = _Sink(store)
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                for piece in receiver.file_chunks:
                    await sink.write(piece, max_bytes)
                receiver.file_chunks.clear()
            parser.finalize()
        except FormParserError:
            raise UploadError(
                422, "The multipart body is malformed; let your HTTP client build it."
            ) from None
        except ClientDisconnect:
            raise UploadError(400, "The client disconnected before the upload finished.") from None
        if not receiver.file_started:
            raise UploadError(
                422, f"No `{FILE_FIELD}` part in the form; attach the recording as `{FILE_FIELD}`."
            )
        if not receiver.file_finished:
            raise UploadError(422, "The multipart body ended in the middle of the file.")
        filename = await sink.finish()
    except BaseException:
        # BaseException: cancellation (client gone, server shutdown) must not leave files;
        # shielded, so a cancelled request still gets its partial upload aborted.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(sink.discard)
        raise
    assert sink.audio_type is not None
    return StoredUpload(
        filename=filename,
        size=sink.size,
        audio_type=sink.audio_type,
        original_filename=_safe_original_name(receiver.file_filename),
        fields=receiver.fields,
    )


def _safe_original_name(name: str | None) -> str | None:
    """Keep the client's file name for display only: last path component, bounded length."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:255] or None
