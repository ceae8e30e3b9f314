"""The multi-host drill runs only in `nox -s scale` (MI_SCALE=1): root, network namespaces and
minutes of real speech recognition."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scale_hosts, beside this file

from scale_hosts import can_make_hosts

collect_ignore = ["client.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None if os.environ.get("MI_SCALE") else "run `uv run nox -s scale` (MI_SCALE=1)"
    drill = [item for item in items if "tests/scale" in str(item.fspath)]
    if drill and not reason:
        reason = can_make_hosts()
    for item in drill if reason else []:
        item.add_marker(pytest.mark.skip(reason=reason))
