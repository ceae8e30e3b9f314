"""The web UI in real Chromium against a real stack: sign in, upload a spoken meeting, watch it
finish, read it, play from a line, search, export, delete (`uv run nox -s ui`)."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import srt
import webvtt

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


def player_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def test_sign_in_refuses_a_wrong_token_then_lets_the_right_one_in(
    open_browser: OpenBrowser, stack: Any
) -> None:
    from playwright.sync_api import expect

    page = open_browser()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/$"))
    page.get_by_label("API token").fill("wrong-token-0123456789")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not this server's API token")
    expect(page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("API token").fill(stack.settings.api_token.get_secret_value())
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{stack.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Meetings")

    # Keyboard: the first Tab reaches the skip link, and focus is visible on it.
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "(() => { const el = document.activeElement;"
        " return [el.className, getComputedStyle(el).outlineStyle]; })()"
    )
    assert focused == ["skip-link", "solid"]


def test_upload_shows_progress_then_the_meeting_finishes_on_its_own(
    open_browser: OpenBrowser, stack: Any, spoken_meeting: Any
) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    page = open_browser()
    stack.sign_in(page)
    page.get_by_role("link", name="Upload", exact=True).click()
    page.get_by_label("Recording").set_input_files(str(spoken_meeting.audio))
    page.get_by_label("Title").fill("Browser upload")
    page.get_by_label("Vocabulary hint").fill("Alice, Bob")
    # What the upload sends is the form's data (Playwright does not expose file bodies).
    sent_fields = page.evaluate(
        "(() => { const d = new FormData(document.getElementById('upload-form'));"
        " return [d.get('title'), d.get('vocabulary'), d.get('file').name]; })()"
    )
    assert sent_fields == ["Browser upload", "Alice, Bob", spoken_meeting.audio.name]

    # Slow the upload down (DevTools network throttling) so its progress can be watched.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    size = spoken_meeting.audio.stat().st_size
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": size / 3},
    )
    seen: set[int] = set()
    with page.expect_request(
        lambda r: r.url.endswith("/api/v1/meetings") and r.method == "POST"
    ) as sent:
        page.get_by_role("button", name="Upload").click()
        deadline = time.monotonic() + 20
        while "/meetings/" not in page.url and time.monotonic() < deadline:
            try:
                value = page.evaluate(
                    "(() => { const bar = document.getElementById('upload-progress');"
                    " return bar && !bar.hidden ? bar.value : -1; })()"
                )
            except PlaywrightError:  # the page moved on to the meeting meanwhile
                break
            seen.add(int(value))
            time.sleep(0.1)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    request = sent.value
    assert request.headers.get("x-csrf-token"), "the upload must carry the CSRF token"
    assert any(0 < value < 100 for value in seen), f"no intermediate progress seen: {seen}"

    expect(page).to_have_url(re.compile(r"/meetings/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Browser upload")
    # Nobody reloads: the page follows the pipeline and shows the results by itself.
    expect(page.locator("#status-badge")).to_have_text("Done", timeout=180_000)
    expect(page.locator("#summary")).not_to_be_empty()
    expect(page.locator("#action-items")).to_contain_text("Owner: Alice")
    transcript = page.locator("#transcript").inner_text().lower()
    heard = [word for word in spoken_meeting.keywords if word in transcript]
    assert len(heard) >= 4, transcript


def test_the_list_follows_processing_without_a_reload(
    open_browser: OpenBrowser, stack: Any, spoken_meeting: Any
) -> None:
    from playwright.sync_api import expect

    page = open_browser()
    stack.sign_in(page)
    meeting_id = stack.upload(spoken_meeting.audio.read_bytes(), "Live list")
    page.goto("/")
    row = page.locator(f'[data-meeting-id="{meeting_id}"]')
    expect(row).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")
    expect(row.locator(".badge")).to_have_text("Done", timeout=180_000)
    assert page.evaluate("window.stillTheSamePage") is True


def test_selecting_a_line_plays_the_recording_from_there(
    open_browser: OpenBrowser, stack: Any, done_meeting: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    page = open_browser()
    stack.sign_in(page)
    page.goto(f"/meetings/{done_meeting['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Budget sync")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert player_time(page) == 0

    segments = done_meeting["transcript"]["segments"]
    index = max(range(len(segments)), key=lambda i: segments[i]["start"])
    start = float(segments[index]["start"])
    assert start > 0.5, f"the recording needs a line that starts later than 0: {segments}"
    line = page.locator(".segment").nth(index)
    line.locator("a").click()
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {start}) < 1.5"
    )
    assert player_time(page) >= start - 0.05
    expect(line).to_have_class(re.compile(r"\bis-playing\b"))
    expect(line).to_have_attribute("aria-current", "true")

    # The keyboard works the same way: focus the first line, press Enter.
    first = page.locator(".segment").nth(0)
    first.locator("a").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('player').currentTime < 1.5")
    expect(first).to_have_class(re.compile(r"\bis-playing\b"))


def test_search_snippet_leads_to_the_moment_it_was_said(
    open_browser: OpenBrowser, stack: Any, done_meeting: dict[str, Any], spoken_meeting: Any
) -> None:
    from playwright.sync_api import expect

    # A word first said after the start, so the link must move the player.
    segments = done_meeting["transcript"]["segments"]
    first_said = {}
    for segment in segments:
        for word in spoken_meeting.keywords:
            if word in segment["text"].lower().split():
                first_said.setdefault(word, segment["start"])
    later = {word: at for word, at in first_said.items() if at > 0.5}
    assert later, f"no keyword is said after the start: {segments}"
    word, said_at = max(later.items(), key=lambda item: item[1])

    page = open_browser()
    stack.sign_in(page)
    page.get_by_role("link", name="Search", exact=True).click()
    page.get_by_label("Search transcripts").fill(word)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#search-summary")).to_contain_text("match")
    hit = page.locator(".hit", has=page.locator(f'a[href^="/meetings/{done_meeting["id"]}"]'))
    expect(hit.locator("mark").first).to_have_text(re.compile(word, re.IGNORECASE))
    hit.locator(".snippet-link").click()

    expect(page).to_have_url(re.compile(rf"/meetings/{done_meeting['id']}\?t=[\d.]+#moment$"))
    moment = float(re.search(r"\?t=([\d.]+)", page.url).group(1))  # type: ignore[union-attr]
    assert moment == pytest.approx(said_at)
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {moment}) < 0.5"
    )
    expect(page.locator("#moment")).to_have_class(re.compile(r"\bis-playing\b"))
    expect(page.locator("#moment")).to_contain_text(re.compile(word, re.IGNORECASE))


def test_exports_download_files_matching_the_transcript(
    open_browser: OpenBrowser, stack: Any, done_meeting: dict[str, Any], tmp_path: Path
) -> None:
    page = open_browser()
    stack.sign_in(page)
    page.goto(f"/meetings/{done_meeting['id']}")
    segments = [s for s in done_meeting["transcript"]["segments"] if s["text"].strip()]

    def download(name: str) -> tuple[str, str]:
        with page.expect_download() as info:
            page.get_by_role("link", name=name).click()
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(target)
        return info.value.suggested_filename, target.read_text()

    filename, text = download("Subtitles (SRT)")
    assert filename.startswith("budget-sync-") and filename.endswith(".srt")
    cues = list(srt.parse(text))
    assert [c.content for c in cues] == [" ".join(s["text"].split()) for s in segments]
    assert [round(c.start.total_seconds(), 3) for c in cues] == [
        round(s["start"], 3) for s in segments
    ]

    filename, text = download("Subtitles (WebVTT)")
    assert filename.endswith(".vtt")
    captions = webvtt.from_buffer(io.StringIO(text)).captions
    assert [c.start_time.in_milliseconds() for c in captions] == [
        round(s["start"] * 1000) for s in segments
    ]

    filename, notes = download("Notes (Markdown)")
    assert filename.endswith(".md")
    assert notes.startswith("# Budget sync\n")
    assert "owner: Alice" in notes


def test_delete_asks_first_and_the_old_link_then_says_it_is_gone(
    open_browser: OpenBrowser, stack: Any, spoken_meeting: Any
) -> None:
    from playwright.sync_api import expect

    meeting_id = stack.upload(spoken_meeting.audio.read_bytes(), "To be deleted")
    page = open_browser()
    stack.sign_in(page)
    page.goto(f"/meetings/{meeting_id}")
    page.get_by_role("link", name="Delete this meeting…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete “To be deleted”?")
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{stack.url}/meetings/{meeting_id}")

    page.get_by_role("link", name="Delete this meeting…").click()
    page.get_by_role("button", name="Delete the meeting").click()
    expect(page).to_have_url(f"{stack.url}/?deleted=1")
    expect(page.get_by_role("status")).to_have_text("The meeting was deleted.")
    expect(page.locator(f'[data-meeting-id="{meeting_id}"]')).to_have_count(0)
    with stack.api() as api:
        assert api.get(f"/api/v1/meetings/{meeting_id}").status_code == 404

    page.goto(f"/meetings/{meeting_id}")  # an old link, from history or a chat message
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_role("alert")).to_contain_text("This meeting does not exist")
    expect(page.get_by_role("link", name="Back to the meetings")).to_be_visible()
