"""Uploads into a bucket (rclone's `serve s3` on loopback) when the bucket cannot take them:
503 naming the cause and what to do, nothing kept (no row, no task, no object)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend.config import BackendSettings
from backend.main import create_app
from mi_testing import ApiServer, free_port
from mi_testing.objectstore import MediaUnderTest, RcloneS3, s3_media

API_TOKEN = "test-token-0123456789abcdef"


def _client(settings: BackendSettings) -> Iterator[httpx.Client]:
    with (
        ApiServer(create_app(settings)) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
        ) as http,
    ):
        yield http


def bucket_settings(
    database_url: str, redis_url: str, media: MediaUnderTest, **change: str
) -> BackendSettings:
    return BackendSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=API_TOKEN,
        **{**media.fields, **change},
        max_upload_mb=1,
        whisper_url=f"127.0.0.1:{free_port()}",
        llm_url=f"http://127.0.0.1:{free_port()}",
    )


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"s3_secret_access_key": "not-the-secret-0123456789"}, "S3_SECRET_ACCESS_KEY is not"),
        ({"s3_bucket": "no-such-bucket"}, "the bucket 'no-such-bucket' does not exist"),
        ({"s3_endpoint_url": "http://127.0.0.1:9"}, "does not answer"),
    ],
    ids=["wrong-secret", "missing-bucket", "unreachable"],
)
def test_an_unusable_bucket_is_503_naming_the_cause_and_keeps_nothing(
    database_url: str,
    redis_url: str,
    s3_media: MediaUnderTest,
    wav: bytes,
    change: dict[str, str],
    cause: str,
) -> None:
    for http in _client(bucket_settings(database_url, redis_url, s3_media, **change)):
        reply = http.post("/api/v1/meetings", files={"file": ("a.wav", wav)})
        assert reply.status_code == 503, reply.text
        detail = reply.json()["detail"]
        assert "recordings store is unavailable" in detail and cause in detail
        assert "nothing was stored" in detail
        assert http.get("/api/v1/meetings").json()["total"] == 0
        media = http.get("/health/ready").json()["checks"]["media"]
        assert not media["ok"] and cause.split(" (")[0][:20] in media["detail"]
    assert s3_media.names() == [] and s3_media.leftovers() == []


def test_a_store_that_goes_down_and_comes_back(
    database_url: str, redis_url: str, wav: bytes, tmp_path
) -> None:
    server = RcloneS3(tmp_path / "s3")
    media = s3_media(server, tmp_path / "scratch")
    settings = BackendSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=API_TOKEN,
        **media.fields,
    )
    port = server.port
    try:
        for http in _client(settings):
            assert http.post("/api/v1/meetings", files={"file": ("a.wav", wav)}).status_code == 202
            server.stop()
            down = http.post("/api/v1/meetings", files={"file": ("b.wav", wav)})
            assert down.status_code == 503 and "does not answer" in down.json()["detail"]
            assert http.get("/api/v1/meetings").json()["total"] == 1  # the first one, only
            server = RcloneS3(tmp_path / "s3", port=port)
            again = http.post("/api/v1/meetings", files={"file": ("c.wav", wav)})
            assert again.status_code == 202, again.text
            assert http.get("/api/v1/meetings").json()["total"] == 2
        assert len(media.names()) == 2
    finally:
        server.stop()
