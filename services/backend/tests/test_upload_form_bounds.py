"""The upload form is bounded in its number of fields, not only in their size:
a body of 20,000 tiny fields gets a 422 that says why, and nothing of it is kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend.config import BackendSettings
from backend.main import create_app
from backend.services.uploads import MAX_PARTS
from mi_testing import ApiServer
from mi_testing.objectstore import MediaUnderTest

BOUNDARY = "mi-test-boundary"


@pytest.fixture
def roomy(settings: BackendSettings) -> Iterator[httpx.Client]:
    """The API with the default 200 MB upload limit: the fields, not the size, must refuse."""
    token = settings.api_token.get_secret_value()
    with (
        ApiServer(create_app(settings.model_copy(update={"max_upload_mb": 200}))) as api,
        httpx.Client(
            base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http,
    ):
        yield http


def _part(name: str, value: bytes, extra: str = "") -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'
    return head.encode() + value + b"\r\n"


def _post(client: httpx.Client, parts: list[bytes]) -> httpx.Response:
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return client.post(
        "/api/v1/meetings",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def _nothing_kept(client: httpx.Client, media: MediaUnderTest) -> None:
    assert client.get("/api/v1/meetings").json()["total"] == 0
    assert media.names() == []


@pytest.mark.parametrize("file_first", [True, False], ids=["file-first", "fields-first"])
def test_twenty_thousand_fields_are_refused_and_nothing_is_kept(
    roomy: httpx.Client, media: MediaUnderTest, wav: bytes, file_first: bool
) -> None:
    client = roomy
    audio = _part("file", wav, '; filename="a.wav"')
    fields = [_part(f"f{i}", b"x") for i in range(20_000)]
    reply = _post(client, [audio, *fields] if file_first else [*fields, audio])
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert f"Too many form fields (max {MAX_PARTS})" in detail and "Nothing was stored" in detail
    _nothing_kept(client, media)


def test_a_part_with_endless_headers_is_refused_too(
    client: httpx.Client, media: MediaUnderTest, wav: bytes
) -> None:
    padding = "".join(f"\r\nX-Pad-{i}: {'a' * 60}" for i in range(2_000))  # 130 kB of them
    reply = _post(client, [_part("file", wav, f'; filename="a.wav"{padding}')])
    assert reply.status_code == 422, reply.text
    assert "malformed" in reply.json()["detail"]  # python-multipart's own bound on headers
    _nothing_kept(client, media)


def test_the_form_the_api_documents_still_fits(
    client: httpx.Client, media: MediaUnderTest, wav: bytes
) -> None:
    parts = [_part("file", wav, '; filename="a.wav"'), _part("title", b"Weekly")]
    parts += [_part(f"unused{i}", b"x") for i in range(MAX_PARTS - 2)]
    reply = _post(client, parts)
    assert reply.status_code == 202, reply.text
