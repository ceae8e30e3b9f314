"""Every main page fits the screen at 1280 and 360 px wide (no sideways scrolling); with
MI_SCREENSHOTS=1 the same run writes the README's screenshots to docs/screenshots/
(`MI_SCREENSHOTS=1 uv run nox -s ui`). Runs after the other browser tests, so the list shows
the meetings they made."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("MI_UI"),
        reason="browser tests need Debian's chromium: run `uv run nox -s ui`",
    ),
]

OpenBrowser = Callable[..., "Page"]


@pytest.mark.parametrize("width", [1280, 360])
def test_pages_fit_the_screen_and_screenshots(
    open_browser: OpenBrowser,
    stack: Any,
    done_meeting: dict[str, Any],
    screenshot: Callable[..., None],
    width: int,
) -> None:
    from playwright.sync_api import expect

    page = open_browser(width=width, height=800)
    stack.sign_in(page)
    for name, path in (
        ("meetings", "/"),
        ("meeting", f"/meetings/{done_meeting['id']}"),
        ("search", "/search?q=design+document"),
    ):
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
        screenshot(page, name)
