"""What `inv backup` and `inv backup.restore` do to a bucket, with server-side copies only.

A backup sets the recordings its database snapshot references aside under
`<prefix>.backup-<id>/` while the rows are locked against deletion (a server-side copy per
recording: no bytes travel through this machine), then reads the archive from those copies at
leisure and deletes them: the bucket's answer to the local runtime's hard links.

A restore (apps stopped) makes the bucket hold exactly the backup's recordings: every live
recording the backup does not have, or has with other bytes, is moved under
`<prefix>.before-<id>/` first; then the backup's recordings the bucket lacks are uploaded.
`finish` deletes what was moved aside, `rollback` moves it back and deletes the uploads.
Names are never reused (the backend generates them) and recordings never change once stored,
so a live recording of the same name and size is the backup's own and stays where it is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from recordings.base import CHUNK, Readable, RecordingMissingError, StoreError, safe_name
from recordings.s3 import AWS_ERRORS, S3Bucket, translate

SERVER_COPY_LIMIT = 5 * 1024**3
"""CopyObject copies at most 5 GiB; bigger objects go through a multipart copy."""


def aside_prefix(store: S3Bucket, kind: str, run_id: str) -> str:
    return f"{store.location.prefix}.{kind}-{run_id}/"


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _copy(store: S3Bucket, source_key: str, target_key: str, size: int) -> None:
    bucket = store.location.bucket
    source = {"Bucket": bucket, "Key": source_key}
    if size <= SERVER_COPY_LIMIT:
        store.client.copy_object(Bucket=bucket, Key=target_key, CopySource=source)
    else:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=SERVER_COPY_LIMIT)
        store.client.copy(source, bucket, target_key, Config=config)


def _delete_keys(store: S3Bucket, keys: list[str]) -> None:
    bucket = store.location.bucket
    for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys at most
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        store.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def drop_prefix(store: S3Bucket, prefix: str) -> None:
    try:
        _delete_keys(store, list(store.keys(prefix)))
    except StoreError:
        raise
    except AWS_ERRORS as exc:
        raise translate(exc, store.location, "delete") from None


# --- backup ----------------------------------------------------------------------------------


@dataclass
class SetAside:
    run_id: str
    files: dict[str, int]  # name -> size
    missing: list[str]


def set_aside(store: S3Bucket, names: list[str], run_id: str) -> SetAside:
    """Copy `names` under `.backup-<run_id>/`; those that are gone are reported missing."""
    prefix = aside_prefix(store, "backup", run_id)
    files: dict[str, int] = {}
    missing: list[str] = []
    for name in names:
        if not safe_name(name):
            missing.append(name)
            continue
        try:
            size = store.stat(name).size
            _copy(store, store.key(name), prefix + name, size)
        except RecordingMissingError:
            missing.append(name)
            continue
        except StoreError:
            raise
        except AWS_ERRORS as exc:
            raise translate(exc, store.location, "copy", name) from None
        files[name] = size
    return SetAside(run_id, files, missing)


def open_aside(store: S3Bucket, run_id: str, name: str) -> Readable:
    key = aside_prefix(store, "backup", run_id) + name
    try:
        body: Readable = store.client.get_object(Bucket=store.location.bucket, Key=key)["Body"]
    except AWS_ERRORS as exc:
        raise translate(exc, store.location, "read", name) from None
    return body


# --- restore ---------------------------------------------------------------------------------


@dataclass
class Swap:
    run_id: str
    moved: list[str] = field(default_factory=list)  # live names moved under .before-<id>/
    uploaded: list[str] = field(default_factory=list)


def swap_in(store: S3Bucket, restored: Path, run_id: str, swap: Swap | None = None) -> Swap:
    """Make the bucket's recordings exactly the files in `restored` (see the module doc).
    `swap` records progress as it goes, so a failure part-way can still be rolled back."""
    swap = swap or Swap(run_id)
    wanted = {
        p.name: p.stat().st_size for p in restored.iterdir() if p.is_file() and safe_name(p.name)
    }
    before = aside_prefix(store, "before", run_id)
    try:
        live = {name: store.stat(name).size for name in store.names()}
        for name, size in sorted(live.items()):
            if wanted.get(name) == size:
                continue
            _copy(store, store.key(name), before + name, size)
            swap.moved.append(name)
            store.delete(name)
        for name in sorted(wanted):
            if live.get(name) == wanted[name]:
                continue
            writer = store.create(name)
            try:
                with (restored / name).open("rb") as source:
                    while chunk := source.read(CHUNK):
                        writer.write(chunk)
                writer.commit()
            except BaseException:
                writer.abort()
                raise
            swap.uploaded.append(name)
    except AWS_ERRORS as exc:
        raise translate(exc, store.location, "restore recordings") from None
    return swap


def finish(store: S3Bucket, swap: Swap) -> None:
    drop_prefix(store, aside_prefix(store, "before", swap.run_id))


def rollback(store: S3Bucket, swap: Swap) -> None:
    """Delete the uploads, move the set-aside recordings back."""
    before = aside_prefix(store, "before", swap.run_id)
    for name in swap.uploaded:
        store.delete(name)
    for name in swap.moved:
        try:
            size = store.client.head_object(Bucket=store.location.bucket, Key=before + name)[
                "ContentLength"
            ]
            _copy(store, before + name, store.key(name), int(size))
        except AWS_ERRORS as exc:
            raise translate(exc, store.location, "put back", name) from None
    drop_prefix(store, before)
