"""The chaos drill (`nox -s chaos`): a whole local stack, its processes SIGKILLed one by one.

Runs only when MI_CHAOS=1 (the nox session sets it); the default test run skips it.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("MI_CHAOS"):
        return
    skip = pytest.mark.skip(reason="the chaos drill runs in `nox -s chaos` (MI_CHAOS=1)")
    for item in items:
        if "tests/chaos" in str(item.path):
            item.add_marker(skip)
