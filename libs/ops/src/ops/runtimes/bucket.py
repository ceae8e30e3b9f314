"""Recordings in a bucket (MEDIA_STORE=s3), as backup and restore reach them from this machine:
the same for every runtime, since the bucket is not on any runtime's disk.

Staging is a server-side copy per recording under `.backup-<id>/` (most before the rows are
locked, the late ones under the lock), and the archive is then read from those copies; a
restore makes the bucket hold exactly the backup's recordings, with what it replaced moved
under `.before-<id>/` until it succeeded.
See recordings.backups for the details.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from ops.errors import OpsError
from ops.runtimes.base import Staged, StagedFile
from recordings import StoreError, backups
from recordings.s3 import S3Bucket

COPY_THREADS = 8


def _failed(what: str, exc: StoreError) -> OpsError:
    return OpsError(f"could not {what}: {exc.problem}", exc.fix)


@dataclass
class BucketStaged(Staged):
    store: S3Bucket | None = None
    run_id: str = ""
    sizes: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[StagedFile]:
        assert self.store is not None
        try:
            body = backups.open_aside(self.store, self.run_id, name)
        except StoreError as exc:
            raise _failed(f"read the staged copy of {name}", exc) from None
        try:
            # botocore's streaming body reads like a file; the archive counts every byte.
            yield StagedFile(cast(IO[bytes], body), self.sizes[name], 0)
        finally:
            body.close()


@dataclass
class BucketStager:
    """Server-side copies under `.backup-<id>/`: no bytes travel through this machine while
    the rows are locked."""

    store: S3Bucket
    scratch: Path
    run_id: str = field(default_factory=backups.new_run_id)
    sizes: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    checked: bool = False

    def add(self, names: Sequence[str]) -> list[str]:
        try:
            if not self.checked:
                # A listing first: its error names the cause (a HEAD's 403 cannot tell a
                # wrong secret from a missing permission).
                self.store.check(write=False)
                self.checked = True
            # In parallel: the late ones are copied while the rows are locked (boto3's clients
            # are thread-safe; each copy is one request the server does alone).
            shares = [list(names[i::COPY_THREADS]) for i in range(COPY_THREADS)]
            with ThreadPoolExecutor(COPY_THREADS) as pool:
                done = list(
                    pool.map(
                        lambda share: backups.set_aside(self.store, share, self.run_id), shares
                    )
                )
        except StoreError as exc:
            raise _failed(f"copy the recordings in {self.store.describe()}", exc) from None
        gone = []
        for aside in done:
            self.sizes.update(aside.files)
            gone += aside.missing
        self.missing += gone
        return gone

    def staged(self) -> Staged:
        return BucketStaged(
            directory=self.scratch,
            files=sorted(self.sizes),
            missing=list(self.missing),
            cleanup=self.discard,
            store=self.store,
            run_id=self.run_id,
            sizes=dict(self.sizes),
        )

    def discard(self) -> None:
        with contextlib.suppress(StoreError):
            backups.drop_prefix(self.store, backups.aside_prefix(self.store, "backup", self.run_id))


@dataclass
class BucketMedia:
    store: S3Bucket

    def stager(self, scratch: Path) -> BucketStager:
        return BucketStager(self.store, scratch)

    def restore_dir(self, scratch: Path) -> Path:
        target = scratch / "media-restore"
        target.mkdir(mode=0o700)
        return target

    def swap_in(self, restored: Path) -> backups.Swap:
        swap = backups.Swap(backups.new_run_id())
        try:
            return backups.swap_in(self.store, restored, swap.run_id, swap)
        except BaseException as exc:
            # Part-way: put back what was moved, remove what was uploaded, then report.
            with contextlib.suppress(StoreError):
                backups.rollback(self.store, swap)
            if isinstance(exc, StoreError):
                raise _failed(f"restore the recordings into {self.store.describe()}", exc) from None
            raise

    def finish(self, token: object) -> None:
        assert isinstance(token, backups.Swap)
        try:
            backups.finish(self.store, token)
        except StoreError as exc:
            prefix = backups.aside_prefix(self.store, "before", token.run_id)
            raise OpsError(
                f"restored, but could not delete the replaced recordings: {exc.problem}",
                f"delete {prefix} in the bucket by hand",
            ) from None

    def rollback(self, token: object) -> None:
        assert isinstance(token, backups.Swap)
        try:
            backups.rollback(self.store, token)
        except StoreError as exc:
            prefix = backups.aside_prefix(self.store, "before", token.run_id)
            raise OpsError(
                f"could not put the previous recordings back: {exc.problem}",
                f"they are under {prefix} in the bucket: copy them back by hand",
            ) from None


def media_for(values: dict[str, str]) -> BucketMedia | None:
    """The bucket adapter when the recordings are in one, else None (the runtime's own)."""
    if values.get("MEDIA_STORE") != "s3":
        return None
    from ops import media

    store = media.store_for(values)
    assert isinstance(store, S3Bucket)
    return BucketMedia(store)
