"""Both stores keep the same contract, the S3 one against real S3-protocol servers on loopback
(rclone's `serve s3`; moto's server for a key without write permission)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mi_testing import free_port
from mi_testing.objectstore import MediaUnderTest, MotoS3, RcloneS3, local_media, s3_media
from recordings import RecordingMissingError, StoreUnavailableError, open_store
from recordings.s3 import PART_SIZE
from recordings.settings import MediaSettings


@pytest.fixture(params=["local", "s3"])
def any_media(request: pytest.FixtureRequest, tmp_path: Path) -> MediaUnderTest:
    if request.param == "local":
        return local_media(tmp_path / "media", tmp_path / "scratch")
    return s3_media(request.getfixturevalue("s3_server"), tmp_path / "scratch")


def test_a_recording_is_written_read_ranged_fetched_and_deleted(any_media, tmp_path):
    store = any_media.store
    data = os.urandom(200_000)
    writer = store.create("a1.wav")
    for start in range(0, len(data), 65536):
        writer.write(data[start : start + 65536])
    assert any_media.names() == []  # nothing visible before the commit
    writer.commit()

    assert any_media.names() == ["a1.wav"]
    assert store.stat("a1.wav").size == len(data)
    assert any_media.read("a1.wav") == data
    body = store.open("a1.wav", 1000, 1999)
    assert body.read() == data[1000:2000]
    body.close()
    with store.fetch("a1.wav", tmp_path / "scratch") as path:
        assert path.read_bytes() == data
    if any_media.kind == "s3":
        assert not path.exists()  # the download is gone with the context
    store.delete("a1.wav")
    store.delete("a1.wav")  # already gone: no error
    assert any_media.names() == []
    with pytest.raises(RecordingMissingError, match=r"a1\.wav is not in"):
        store.stat("a1.wav")


def test_an_aborted_upload_leaves_nothing(any_media):
    writer = any_media.store.create("b2.wav")
    writer.write(b"x" * (PART_SIZE + 10))  # past one part: a multipart upload is under way
    writer.abort()
    writer.abort()  # idempotent
    assert any_media.names() == []
    assert any_media.leftovers() == []


def test_a_recording_larger_than_a_part_streams_in_parts(any_media):
    data = os.urandom(2 * PART_SIZE + 12345)
    writer = any_media.store.create("c3.wav")
    for start in range(0, len(data), 1 << 20):
        writer.write(data[start : start + (1 << 20)])
    writer.commit()
    assert hashlib.sha256(any_media.read("c3.wav")).digest() == hashlib.sha256(data).digest()
    assert any_media.store.stat("c3.wav").size == len(data)


def test_names_never_leave_the_store(any_media):
    for bad in ("../x.wav", "a/b.wav", ".hidden", ""):
        with pytest.raises(RecordingMissingError):
            any_media.store.stat(bad)


def test_check_passes_on_a_usable_store(any_media):
    assert any_media.store.check(write=True)


# --- bad settings: each cause named, with what to do ------------------------------------------


def _broken(media: MediaUnderTest, **fields: object):
    return open_store(MediaSettings(**{**media.fields, **fields}))


@pytest.mark.parametrize(
    ("fields", "problem", "fix"),
    [
        (
            {"s3_secret_access_key": "not-the-secret-0123456789"},
            "S3_SECRET_ACCESS_KEY is not the secret of S3_ACCESS_KEY_ID",
            "set the secret",
        ),
        (
            {"s3_access_key_id": "nobody-knows-this-key"},
            "does not know the access key S3_ACCESS_KEY_ID",
            "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY",
        ),
        (
            {"s3_bucket": "no-such-bucket"},
            "the bucket 'no-such-bucket' does not exist",
            "S3_BUCKET",
        ),
    ],
    ids=["wrong-secret", "unknown-key", "missing-bucket"],
)
def test_wrong_settings_are_named(s3_media, fields, problem, fix):
    store = _broken(s3_media, **fields)
    with pytest.raises(StoreUnavailableError) as info:
        store.check(write=False)
    assert problem in info.value.problem
    assert fix in info.value.fix
    with pytest.raises(StoreUnavailableError, match=problem.split(" (")[0][:30]):
        writer = store.create("d4.wav")
        writer.write(b"RIFF")
        writer.commit()


def test_an_unreachable_endpoint_is_named(s3_media):
    store = _broken(s3_media, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailableError) as info:
        store.check(write=False)
    assert "does not answer" in info.value.problem
    assert "S3_ENDPOINT_URL" in info.value.fix


def test_a_key_without_write_permission_is_named(read_only_s3: MotoS3, tmp_path):
    key, secret = read_only_s3.reader
    settings = MediaSettings(
        media_store="s3",
        s3_endpoint_url=read_only_s3.endpoint,
        s3_bucket=read_only_s3.bucket,
        s3_access_key_id=key,
        s3_secret_access_key=secret,
        s3_max_attempts=1,
    )
    store = open_store(settings)
    assert store.check(write=False)  # it may list: reading works
    with pytest.raises(StoreUnavailableError) as info:
        store.check(write=True)
    assert "denies this key permission to write" in info.value.problem
    assert "s3:PutObject" in info.value.fix


def test_incomplete_s3_settings_are_refused_naming_the_keys():
    with pytest.raises(ValueError, match="MEDIA_STORE=s3 needs S3_ENDPOINT_URL, S3_BUCKET"):
        MediaSettings(media_store="s3")
    with pytest.raises(ValueError, match="not a bucket name"):
        MediaSettings(
            media_store="s3",
            s3_endpoint_url="http://x",
            s3_bucket="Bad_Bucket",
            s3_access_key_id="k",
            s3_secret_access_key="s",
        )


def test_a_store_down_mid_way_is_unavailable_not_missing(s3_server: RcloneS3, tmp_path):
    server = RcloneS3(tmp_path / "s3-2")
    media = s3_media(server, tmp_path / "scratch")
    media.put("e5.wav", b"RIFF")
    server.stop()
    with pytest.raises(StoreUnavailableError, match="does not answer"):
        media.store.stat("e5.wav")
