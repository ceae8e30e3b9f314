"""Where meeting recordings live: one interface (`MediaStore`), two stores.

    local.py     a directory on this machine (MEDIA_DIR): the dev default
    s3.py        a bucket of any S3-compatible object store, through boto3
    settings.py  MEDIA_STORE and the S3_* keys (mixed into the services' settings), open_store()
    backups.py   what backup and restore do to a store: set recordings aside, put them back

The backend writes (streamed) and deletes, the worker reads, `inv backup` copies: all through
this package, so none of them knows which store it talks to.
"""

from recordings.base import (
    MediaStore,
    Readable,
    RecordingInfo,
    RecordingMissingError,
    RecordingWriter,
    StoreError,
    StoreUnavailableError,
    safe_name,
)
from recordings.settings import MediaSettings, open_store

__all__ = [
    "MediaSettings",
    "MediaStore",
    "Readable",
    "RecordingInfo",
    "RecordingMissingError",
    "RecordingWriter",
    "StoreError",
    "StoreUnavailableError",
    "open_store",
    "safe_name",
]
