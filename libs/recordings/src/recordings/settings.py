"""The settings that choose and reach the store, shared by every service that touches
recordings (backend and worker inherit them), and `open_store` to build it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator

from recordings.base import MediaStore
from recordings.local import LocalDirectory
from recordings.s3 import S3Bucket, S3Location

# S3's rules for bucket names (also what GCS and Ceph accept): 3-63 characters of lower-case
# letters, digits, dots and hyphens, starting and ending with a letter or digit.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class MediaSettings(BaseModel):
    """Mixed into a service's settings class: MEDIA_STORE picks the store, the rest reach it."""

    media_store: Literal["local", "s3"] = Field(
        "local", description="Where recordings are stored: local (MEDIA_DIR) or s3 (a bucket)."
    )
    media_dir: Path = Field(
        Path(".data/dev/media"),
        description="Directory of the recordings when MEDIA_STORE=local.",
    )
    s3_endpoint_url: str = Field("", description="S3 API URL of the object store (MEDIA_STORE=s3).")
    s3_bucket: str = Field("", description="Bucket holding the recordings (MEDIA_STORE=s3).")
    s3_region: str = Field("us-east-1", description="Region of the bucket (signing scope).")
    s3_access_key_id: SecretStr = Field(
        SecretStr(""), description="Access key of the object store."
    )
    s3_secret_access_key: SecretStr = Field(
        SecretStr(""), description="Secret of S3_ACCESS_KEY_ID."
    )
    s3_path_style: bool = Field(
        True,
        description="Path-style URLs (endpoint/bucket/key: MinIO, Ceph, rclone); false for "
        "virtual-hosted style (bucket.endpoint/key: AWS).",
    )
    s3_prefix: str = Field(
        "", description="Key prefix of the recordings, to share a bucket (e.g. `meetings/`)."
    )
    s3_connect_timeout: Annotated[float, Field(gt=0, le=120)] = Field(
        5.0, description="Seconds to connect to the object store before calling it down."
    )
    s3_read_timeout: Annotated[float, Field(gt=0, le=3600)] = Field(
        60.0, description="Seconds to wait for the object store's next bytes."
    )
    s3_max_attempts: Annotated[int, Field(ge=1, le=10)] = Field(
        3, description="Attempts per object-store request (throttling, 5xx, dropped links)."
    )

    @model_validator(mode="after")
    def _s3_is_complete(self) -> Self:
        if self.media_store != "s3":
            return self
        missing = [
            key
            for key, value in (
                ("S3_ENDPOINT_URL", self.s3_endpoint_url),
                ("S3_BUCKET", self.s3_bucket),
                ("S3_ACCESS_KEY_ID", self.s3_access_key_id.get_secret_value()),
                ("S3_SECRET_ACCESS_KEY", self.s3_secret_access_key.get_secret_value()),
            )
            if not value
        ]
        if missing:
            raise ValueError(
                f"MEDIA_STORE=s3 needs {', '.join(missing)} (e.g. S3_ENDPOINT_URL="
                "https://s3.eu-west-1.amazonaws.com)"
            )
        if not self.s3_endpoint_url.startswith(("http://", "https://")):
            raise ValueError("S3_ENDPOINT_URL must start with http:// or https://")
        if not BUCKET_NAME.match(self.s3_bucket):
            raise ValueError(
                f"S3_BUCKET {self.s3_bucket!r} is not a bucket name (3-63 lower-case letters, "
                "digits, dots, hyphens)"
            )
        if self.s3_prefix and not self.s3_prefix.endswith("/"):
            raise ValueError("S3_PREFIX must end with / (e.g. meetings/)")
        return self

    def s3_location(self) -> S3Location:
        return S3Location(
            endpoint_url=self.s3_endpoint_url,
            bucket=self.s3_bucket,
            region=self.s3_region,
            access_key_id=self.s3_access_key_id.get_secret_value(),
            secret_access_key=self.s3_secret_access_key.get_secret_value(),
            path_style=self.s3_path_style,
            prefix=self.s3_prefix,
            connect_timeout=self.s3_connect_timeout,
            read_timeout=self.s3_read_timeout,
            max_attempts=self.s3_max_attempts,
        )


def open_store(settings: MediaSettings) -> MediaStore:
    """The store the settings choose (no connection is made until it is used)."""
    if settings.media_store == "s3":
        return S3Bucket(settings.s3_location())
    return LocalDirectory(settings.media_dir)
