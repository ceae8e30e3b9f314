"""The recording as an HTTP response with Range support, from whichever store holds it.

A directory's file goes out as Starlette's FileResponse (Range, If-Range, ETag, sendfile).
A bucket's object is streamed through: one byte range (what audio players ask for) is
forwarded as a ranged GET, so seeking never downloads the whole recording; several ranges
in one request get the whole file (RFC 9110 lets a server ignore Range).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.utils import format_datetime

import anyio
from fastapi import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from recordings import MediaStore, RecordingInfo
from recordings.base import CHUNK

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(Exception):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) asked for by a single-range header; None: send everything."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:  # several ranges, or a unit other than bytes
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiableError
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiableError
    return start, end


def _headers(info: RecordingInfo) -> dict[str, str]:
    headers = {
        "accept-ranges": "bytes",
        "last-modified": format_datetime(info.modified, usegmt=True),
    }
    if info.etag:
        headers["etag"] = info.etag
    return headers


async def recording_response(
    request: Request, store: MediaStore, name: str, content_type: str
) -> Response:
    """Raises RecordingMissingError / StoreUnavailableError for the caller to answer."""
    path = store.local_path(name)
    if path is not None:
        await anyio.to_thread.run_sync(store.stat, name)  # missing: RecordingMissingError
        # FileResponse answers Range / If-Range itself (206, 416) and sets ETag and
        # Last-Modified.
        return FileResponse(path, media_type=content_type)

    info = await anyio.to_thread.run_sync(store.stat, name)
    headers = _headers(info)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range and if_range not in {info.etag, headers["last-modified"]}:
        wanted = None  # the client's copy is of other bytes: send the whole new one
    try:
        span = byte_range(wanted, info.size)
    except RangeNotSatisfiableError:
        return Response(
            status_code=416, headers={**headers, "content-range": f"bytes */{info.size}"}
        )
    start, end = span if span is not None else (0, info.size - 1)
    headers["content-length"] = str(max(0, end - start + 1))
    status = 200
    if span is not None:
        status = 206
        headers["content-range"] = f"bytes {start}-{end}/{info.size}"
    if request.method == "HEAD" or info.size == 0:
        return Response(status_code=status, headers=headers, media_type=content_type)

    body = await anyio.to_thread.run_sync(
        lambda: store.open(name, start, end if span is not None else None)
    )

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, CHUNK):
                yield chunk
        finally:
            await anyio.to_thread.run_sync(body.close)

    return StreamingResponse(chunks(), status_code=status, headers=headers, media_type=content_type)
