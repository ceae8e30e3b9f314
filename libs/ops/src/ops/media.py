"""The recordings store as the tasks on this machine reach it (`inv up`, `health`, `env.check`,
`backup`): the same settings the services read, seen from the host.

MEDIA_STORE=s3 with an empty S3_ENDPOINT_URL means the stack's own object store: compose runs
it as the `objectstore` service and publishes it on 127.0.0.1:OBJECTSTORE_PORT (dev,
staging), which is where the host reaches it. The local runtime runs none: there,
S3_ENDPOINT_URL must name a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ops import project
from ops.errors import OpsError
from recordings import MediaStore, StoreError, open_store
from recordings.settings import MediaSettings

# Tasks probe with one attempt and short timeouts: a dead store must not stall `inv health`.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0


def uses_own_store(values: Mapping[str, str]) -> bool:
    return values.get("MEDIA_STORE") == "s3" and not values.get("S3_ENDPOINT_URL")


def own_store_endpoint(values: Mapping[str, str]) -> str:
    return f"http://127.0.0.1:{values.get('OBJECTSTORE_PORT', '')}"


def settings_for(values: Mapping[str, str], *, root: Path | None = None) -> MediaSettings:
    """MediaSettings from an env file's (interpolated) values, as seen from this machine.
    OpsError naming the key when they are unusable."""
    from pydantic import ValidationError

    media_dir = Path(values.get("MEDIA_DIR", ".data/dev/media")).expanduser()
    if not media_dir.is_absolute() and values.get("MEDIA_STORE", "local") == "local":
        # Relative to the checkout, as the local runtime gives it to the services. (A bucket
        # needs no directory: the backup job runs where there is no checkout.)
        media_dir = (root or project.root()) / media_dir
    endpoint = values.get("S3_ENDPOINT_URL", "")
    if uses_own_store(values):
        endpoint = own_store_endpoint(values)
    try:
        return MediaSettings(
            media_store=values.get("MEDIA_STORE", "local"),  # type: ignore[arg-type]
            media_dir=media_dir,
            s3_endpoint_url=endpoint,
            s3_bucket=values.get("S3_BUCKET", ""),
            s3_region=values.get("S3_REGION", "us-east-1") or "us-east-1",
            s3_access_key_id=values.get("S3_ACCESS_KEY_ID", ""),  # type: ignore[arg-type]
            s3_secret_access_key=values.get("S3_SECRET_ACCESS_KEY", ""),  # type: ignore[arg-type]
            s3_path_style=values.get("S3_PATH_STYLE", "true").lower() in {"1", "true", "yes"},
            s3_prefix=values.get("S3_PREFIX", ""),
            s3_connect_timeout=CONNECT_TIMEOUT,
            s3_read_timeout=READ_TIMEOUT,
            s3_max_attempts=1,
        )
    except ValidationError as exc:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise OpsError(f"the recordings store settings are unusable: {reasons}") from None


def store_for(values: Mapping[str, str], *, root: Path | None = None) -> MediaStore:
    return open_store(settings_for(values, root=root))


def check(values: Mapping[str, str], *, write: bool = True, env: str = "<env>") -> str:
    """Probe the store (a write and a delete with `write`); OpsError saying which problem."""
    store = store_for(values)
    try:
        return store.check(write=write)
    except StoreError as exc:
        raise OpsError(
            f"the recordings store is not usable: {exc.problem}",
            f"{exc.fix} (in .env.{env}), then run the command again"
            if exc.fix
            else f"fix the S3_* settings in .env.{env}",
        ) from None
