"""`inv backup.*`: backups that restore to exactly what they captured, and restores that
refuse before they touch anything unless the archive is proven intact.

    create.py    one consistent archive (database dump + the media its rows reference)
    catalog.py   the archives of an environment, and retention (`--keep`)
    verify.py    checksums, and a restore drill into a scratch database
    restore.py   verify, restore aside, swap in, migrate, health-check; undo on failure
    archive.py   the archive format (tar + manifest with every part's SHA-256)
    pgclient.py  psql / pg_dump / pg_restore through the runtime's Endpoint

Uploads write their file before their row commits; deletes commit first and unlink after. So
every row in a database snapshot has its file on disk at the snapshot's moment; a backup
sets their files aside under short row locks, then dumps and copies with no lock held
(see create.py).
"""

from ops.backup.catalog import list_backups, prune
from ops.backup.create import Created, create, safety_backup
from ops.backup.restore import Restored, check_restorable, restore
from ops.backup.verify import Verified, verify

__all__ = [
    "Created",
    "Restored",
    "Verified",
    "check_restorable",
    "create",
    "list_backups",
    "prune",
    "restore",
    "safety_backup",
    "verify",
]
