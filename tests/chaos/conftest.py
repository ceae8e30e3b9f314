"""The chaos drills (`nox -s chaos`): a whole local stack, its processes SIGKILLed one by one,
or soaked by many clients for minutes.

Runs only when MI_CHAOS=1 (the nox session sets it); the default test run skips it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # chaos_stack, beside this file

from chaos_stack import Stack, local_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("MI_CHAOS"):
        return
    skip = pytest.mark.skip(reason="the chaos drill runs in `nox -s chaos` (MI_CHAOS=1)")
    for item in items:
        if "tests/chaos" in str(item.path):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def stack(make_checkout: Any, make_inv: Any, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A fresh stack per drill module: one drill's kills never colour another's figures."""
    with local_stack(make_checkout, make_inv, request.module.__name__.rsplit(".", 1)[-1]) as up:
        yield up
