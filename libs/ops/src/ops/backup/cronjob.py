"""`python -m ops.backup.cronjob`: the backup a scheduler runs where no repository checkout is
(Kubernetes' backup CronJob, the `ops` image): the same archive as `inv backup`, written in
scratch space, read back in full, then uploaded to the object store.

Settings come from the environment, like the services' (the Secret and ConfigMap):
DATABASE_URL, MEDIA_STORE=s3 and the S3_* keys, APP_ENV, BACKUP_KEY (signs the archive) and
BACKUP_ENCRYPT (encrypts it at rest); BACKUP_WORK_DIR (scratch space,
default the temp dir), BACKUP_KEEP (archives kept in the bucket, default 14, 0: all) and
BACKUP_PREFIX (default `<S3_PREFIX>backups/<APP_ENV>/`).

Exit status: 0 when the archive is verified and uploaded, 1 on a failure (its one-line reason
on stderr), 2 when the settings are unusable.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ops import console
from ops.backup import archive, seal
from ops.backup.create import write_archive
from ops.backup.verify import verify as verify_archive
from ops.errors import OpsError
from ops.runtimes.base import StackData
from ops.runtimes.bucket import BucketMedia
from ops.runtimes.local.data import LocalEndpoint, NoApps
from recordings import StoreError
from recordings.s3 import AWS_ERRORS, S3Bucket, translate

DEFAULT_KEEP = 14


def _bucket(values: Mapping[str, str]) -> S3Bucket:
    from ops import media

    if values.get("MEDIA_STORE") != "s3":
        raise OpsError(
            "the backup job writes to the object store: MEDIA_STORE must be s3",
            "set MEDIA_STORE=s3 and the S3_* keys (the cluster's mi-config and mi-secrets)",
            code=2,
        )
    store = media.store_for(values)
    assert isinstance(store, S3Bucket)
    return store


def prefix_for(values: Mapping[str, str]) -> str:
    default = f"{values.get('S3_PREFIX', '')}backups/{values.get('APP_ENV', 'dev')}/"
    return values.get("BACKUP_PREFIX") or default


def upload(store: S3Bucket, path: Path, key: str) -> None:
    """The archive (and its verification record) into the bucket; boto3's managed transfer
    streams it in parts, so an archive of any size needs no memory."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_chunksize=64 * 1024 * 1024, max_concurrency=4)
    try:
        store.client.upload_file(str(path), store.location.bucket, key, Config=config)
        sidecar = archive.sidecar_path(path)
        if sidecar.exists():
            store.client.upload_file(
                str(sidecar), store.location.bucket, key + archive.SIDECAR_SUFFIX
            )
    except AWS_ERRORS as exc:
        raise translate(exc, store.location, "upload the backup") from None


def prune(store: S3Bucket, prefix: str, keep: int) -> list[str]:
    """Delete all but the newest `keep` archives under `prefix` (names sort by time)."""
    if keep <= 0:
        return []
    archives = sorted(
        key for key in store.keys(prefix) if archive.is_archive_name(key.rsplit("/", 1)[-1])
    )
    doomed = archives[: max(0, len(archives) - keep)]
    for key in doomed:
        for name in (key, key + archive.SIDECAR_SUFFIX):
            try:
                store.client.delete_object(Bucket=store.location.bucket, Key=name)
            except AWS_ERRORS as exc:
                raise translate(exc, store.location, "delete an old backup") from None
    return doomed


def run(values: Mapping[str, str]) -> str:
    """Back up, verify, upload, prune; the key the archive was uploaded to."""
    started = time.monotonic()
    if not values.get("DATABASE_URL"):
        raise OpsError("DATABASE_URL is not set", "give the job the app's Secret", code=2)
    try:
        keep = int(values.get("BACKUP_KEEP", DEFAULT_KEEP))
    except ValueError:
        raise OpsError("BACKUP_KEEP must be a whole number", code=2) from None
    backup_key = seal.key_from(values, "the job's environment")
    store = _bucket(values)
    env_name = values.get("APP_ENV", "dev")
    target = StackData(
        "direct",
        LocalEndpoint(values["DATABASE_URL"]),
        BucketMedia(store),
        NoApps(values["DATABASE_URL"]),
    )
    work = Path(values.get("BACKUP_WORK_DIR") or tempfile.gettempdir())
    work.mkdir(parents=True, exist_ok=True)
    path, _ = write_archive(
        target,
        env_name,
        work,
        key=backup_key,
        encrypt=seal.encrypt_wanted(values),
        started=started,
    )
    try:
        result = verify_archive(path, key=backup_key)
        if not result.ok:
            raise OpsError(
                f"the new backup {path.name} does not read back intact: "
                + "; ".join(result.problems),
                "check the job's scratch volume and run it again",
            )
        prefix = prefix_for(values)
        key = prefix + path.name
        upload(store, path, key)
        console.say(
            f"uploaded {path.name} ({console.size(path.stat().st_size)}) to "
            f"s3://{store.location.bucket}/{key} in {console.elapsed(started)}"
        )
        for deleted in prune(store, prefix, keep):
            console.say(f"deleted {deleted} (BACKUP_KEEP={keep})")
    finally:
        path.unlink(missing_ok=True)
        archive.sidecar_path(path).unlink(missing_ok=True)
    return key


def main(environ: Mapping[str, str] | None = None) -> int:
    try:
        run(os.environ if environ is None else environ)
    except OpsError as exc:
        sys.stderr.write(f"backup failed: {exc.problem}" + (f" ({exc.fix})" if exc.fix else ""))
        sys.stderr.write("\n")
        return int(exc.code) if exc.code in {1, 2} else 1
    except StoreError as exc:
        sys.stderr.write(f"backup failed: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
