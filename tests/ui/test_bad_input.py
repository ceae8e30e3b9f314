"""The web UI when things go wrong, in real Chromium: expired session, files the API refuses
(before and after sending), a failed meeting, JavaScript off. Each ends in a clear message on
the page, never a blank screen or a traceback (`uv run nox -s ui`)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
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
MIB = 1024 * 1024


def upload_requests(page: Page) -> list[str]:
    """Every upload the page sends from now on (filled as they happen)."""
    sent: list[str] = []
    page.on(
        "request",
        lambda r: (
            sent.append(r.url) if r.method == "POST" and "/api/v1/meetings" in r.url else None
        ),
    )
    return sent


def no_traceback(page: Page) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and body.strip()


def test_an_expired_session_says_so_on_pages_and_uploads(
    open_browser: OpenBrowser, stack: Any, short_session_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_browser()
    page.goto(f"{short_session_url}/sign-in")
    page.get_by_label("API token").fill(stack.settings.api_token.get_secret_value())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Meetings")
    page.goto(f"{short_session_url}/upload")
    time.sleep(2.5)  # the session lasts 2 s

    # The page open before expiry: its upload is refused, and it says why.
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200))
    page.get_by_label("Recording").set_input_files(str(audio))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("Your session expired")
    expect(page.locator("#session-expired")).to_be_visible()
    page.locator("#session-expired-link").click()

    # Following a link: the sign-in page explains, and signing in returns to the page.
    expect(page).to_have_url(re.compile(r"/sign-in\?.*reason=expired"))
    expect(page.get_by_role("status")).to_have_text(
        "Your session expired. Sign in again to continue."
    )
    page.get_by_label("API token").fill(stack.settings.api_token.get_secret_value())
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{short_session_url}/upload")


def test_a_file_that_is_not_audio_is_refused_before_and_after_sending(
    open_browser: OpenBrowser, stack: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_browser()
    stack.sign_in(page)
    page.goto("/upload")
    sent = upload_requests(page)

    notes = tmp_path / "notes.txt"
    notes.write_text("Not a recording.\n")
    page.get_by_label("Recording").set_input_files(str(notes))
    expect(page.locator("#upload-error")).to_contain_text(
        "“notes.txt” does not look like an audio recording; upload WAV"
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_be_visible()
    assert sent == [], "nothing may be sent for a file the page already knows is wrong"

    # Named like audio, so only the server can tell: its 415 message is shown.
    fake = tmp_path / "fake.wav"
    fake.write_text("This is text pretending to be a WAV file. " * 10)
    page.get_by_label("Recording").set_input_files(str(fake))
    expect(page.locator("#upload-error")).to_be_hidden()
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("not a supported audio format")
    assert len(sent) == 1
    expect(page).to_have_url(f"{stack.url}/upload")
    expect(page.get_by_role("button", name="Upload")).to_be_enabled()
    no_traceback(page)


def test_a_file_over_the_limit_is_refused_before_and_after_sending(
    open_browser: OpenBrowser, stack: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_browser()
    stack.sign_in(page)
    page.goto("/upload")
    sent = upload_requests(page)
    big = tmp_path / "long.wav"
    big.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(int(1.5 * MIB)))
    page.get_by_label("Recording").set_input_files(str(big))
    expect(page.locator("#upload-error")).to_contain_text("is 1.5 MiB; the limit is 1 MiB")
    page.get_by_role("button", name="Upload").click()
    assert sent == []

    # A page that believes in a higher limit (the server's was lowered since it loaded):
    # the API's 413 message reaches the user.
    page.evaluate(
        "document.getElementById('upload-form').setAttribute('data-max-bytes', '104857600')"
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("larger than the 1 MiB limit")
    assert len(sent) == 1
    no_traceback(page)


def test_a_failed_meeting_says_why_and_what_to_do(open_browser: OpenBrowser, stack: Any) -> None:
    from playwright.sync_api import expect

    # A WAV header over noise: accepted by the upload, undecodable by the speech service.
    broken = b"RIFF\x24\x10\x00\x00WAVEfmt " + os.urandom(4096)
    meeting_id = stack.upload(broken, "Broken recording", filename="broken.wav")
    meeting = stack.wait_for_status(meeting_id, {"failed", "done"}, timeout=120)
    assert meeting["status"] == "failed", meeting

    page = open_browser()
    stack.sign_in(page)
    row = page.locator(f'[data-meeting-id="{meeting_id}"]')
    expect(row.locator(".badge")).to_have_text("Failed")
    expect(row.locator(".row-error")).to_have_text(meeting["error"])
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Processing failed")).to_be_visible()
    expect(page.locator("#failure-reason")).to_have_text(meeting["error"])
    expect(page.locator("#failure")).to_contain_text("upload it again")
    expect(page.locator("#exports")).to_have_count(0)
    no_traceback(page)


def test_without_javascript_pages_still_list_and_show_meetings(
    open_browser: OpenBrowser, stack: Any, done_meeting: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    page = open_browser(javascript=False)
    stack.sign_in(page)  # a plain form post
    expect(page.get_by_role("heading", level=1)).to_have_text("Meetings")
    page.get_by_role("link", name="Budget sync").first.click()
    expect(page.locator("#summary")).not_to_be_empty()
    expect(page.locator("#action-items")).to_contain_text("Owner: Alice")
    assert page.locator(".segment").count() == len(done_meeting["transcript"]["segments"])

    page.goto("/search?q=budget")
    expect(page.locator("#search-summary")).to_contain_text("match")

    page.goto("/upload")
    # (Playwright's text search skips <noscript>; the element itself is checked instead.)
    expect(page.locator("noscript p")).to_be_visible()
    expect(page.locator("noscript p")).to_contain_text("Uploading from this page needs JavaScript")
    expect(page.get_by_role("button", name="Upload")).to_be_disabled()
