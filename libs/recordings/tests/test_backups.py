"""What backup and restore do to a bucket (server-side copies), on rclone's `serve s3`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mi_testing.objectstore import MediaUnderTest
from recordings import StoreUnavailableError, backups
from recordings.s3 import S3Bucket, S3Writer

pytestmark = pytest.mark.objectstore  # `nox -s s3`


def _contents(media: MediaUnderTest) -> dict[str, str]:
    return {name: hashlib.sha256(media.read(name)).hexdigest() for name in media.names()}


def _every_key(media: MediaUnderTest) -> list[str]:
    store = media.store
    assert isinstance(store, S3Bucket)
    return sorted(store.keys(""))


def test_recordings_are_set_aside_read_and_dropped(s3_media: MediaUnderTest) -> None:
    s3_media.put("a.wav", b"A" * 1000)
    s3_media.put("b.wav", b"B" * 10)
    store = s3_media.store
    assert isinstance(store, S3Bucket)

    aside = backups.set_aside(store, ["a.wav", "b.wav", "gone.wav", "../x"], "run1")
    assert aside.files == {"a.wav": 1000, "b.wav": 10}
    assert aside.missing == ["gone.wav", "../x"]
    s3_media.remove("a.wav")  # a delete after the lock is released: the copy stays
    body = backups.open_aside(store, "run1", "a.wav")
    assert body.read() == b"A" * 1000
    body.close()
    assert s3_media.names() == ["b.wav"]  # copies are not recordings

    backups.drop_prefix(store, backups.aside_prefix(store, "backup", "run1"))
    assert _every_key(s3_media) == ["b.wav"]


def _restored_dir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    directory = tmp_path / "restored"
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def test_swap_in_makes_the_bucket_the_backup_and_finish_drops_the_rest(
    s3_media: MediaUnderTest, tmp_path: Path
) -> None:
    s3_media.put("kept.wav", b"K" * 50)  # in the backup, same bytes: stays in place
    s3_media.put("after.wav", b"N" * 20)  # uploaded after the backup: goes
    s3_media.put("changed.wav", b"X" * 5)  # other bytes than the backup's: replaced
    restored = _restored_dir(
        tmp_path, {"kept.wav": b"K" * 50, "changed.wav": b"C" * 7, "deleted.wav": b"D" * 9}
    )
    store = s3_media.store
    assert isinstance(store, S3Bucket)

    swap = backups.swap_in(store, restored, "run2")
    assert sorted(swap.moved) == ["after.wav", "changed.wav"]
    assert sorted(swap.uploaded) == ["changed.wav", "deleted.wav"]
    assert s3_media.names() == ["changed.wav", "deleted.wav", "kept.wav"]
    assert s3_media.read("changed.wav") == b"C" * 7
    backups.finish(store, swap)
    assert _every_key(s3_media) == ["changed.wav", "deleted.wav", "kept.wav"]


def test_rollback_puts_the_previous_recordings_back(
    s3_media: MediaUnderTest, tmp_path: Path
) -> None:
    s3_media.put("kept.wav", b"K" * 50)
    s3_media.put("after.wav", b"N" * 20)
    s3_media.put("changed.wav", b"X" * 5)
    before = _contents(s3_media)
    restored = _restored_dir(tmp_path, {"changed.wav": b"C" * 7, "deleted.wav": b"D" * 9})
    store = s3_media.store
    assert isinstance(store, S3Bucket)

    swap = backups.swap_in(store, restored, "run3")
    assert _contents(s3_media) != before
    backups.rollback(store, swap)
    assert _contents(s3_media) == before
    assert _every_key(s3_media) == sorted(before)


def test_a_failure_part_way_is_recorded_for_the_rollback(
    s3_media: MediaUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_media.put("old.wav", b"O" * 30)
    restored = _restored_dir(tmp_path, {"a.wav": b"A" * 10, "b.wav": b"B" * 10})
    store = s3_media.store
    assert isinstance(store, S3Bucket)
    commit = S3Writer.commit

    def store_gone_at_b(writer: S3Writer) -> None:  # the store dies after the first upload
        if writer.name == "b.wav":
            raise StoreUnavailableError("the object store at X does not answer")
        commit(writer)

    monkeypatch.setattr(S3Writer, "commit", store_gone_at_b)
    swap = backups.Swap("run4")
    with pytest.raises(StoreUnavailableError):
        backups.swap_in(store, restored, "run4", swap)
    assert (swap.moved, swap.uploaded) == (["old.wav"], ["a.wav"])
    monkeypatch.undo()
    backups.rollback(store, swap)
    assert _contents(s3_media) == {"old.wav": hashlib.sha256(b"O" * 30).hexdigest()}
    assert _every_key(s3_media) == ["old.wav"]
