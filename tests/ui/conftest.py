"""Fixtures for the browser tests (`uv run nox -s ui`): the whole stack on loopback and
Debian's Chromium driven by Playwright.

The stack is real: Postgres and Redis, the whisper (pocketsphinx) and llm (extractive) services
as subprocesses (all from the mi_testing plugin), a Celery worker subprocess, and the backend
app served by uvicorn. Chromium is the
system's (`apt-get install -y chromium`): Playwright never downloads a browser here. Each test
gets its own browser with a fresh profile directory; everything is stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from backend.config import BackendSettings
from backend.main import create_app
from mi_testing import ApiServer, ServiceProcess, subprocess_env
from mi_testing.stores import Postgres, RedisServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MI_CHROMIUM", "/usr/bin/chromium"))
# Headless without the sandbox (root in CI) and without any of Chromium's own network traffic:
# this machine refuses outbound connections, and a browser test must not depend on them.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_TOKEN = "ui-test-token-0123456789abcdef"
MAX_UPLOAD_MB = 1
SCREENSHOTS = ROOT / "docs" / "screenshots"


# --- the stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    settings: BackendSettings
    database_url: str
    media_dir: Path
    worker: ServiceProcess

    def api(self) -> httpx.Client:
        """An API client with the bearer token, for setting up and checking."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
        )

    def upload(self, audio: bytes, title: str, filename: str = "meeting.wav") -> str:
        with self.api() as api:
            reply = api.post(
                "/api/v1/meetings",
                files={"file": (filename, audio, "audio/wav")},
                data={"title": title},
            )
        assert reply.status_code == 202, reply.text
        return str(reply.json()["id"])

    def wait_for_status(
        self, meeting_id: str, wanted: set[str], timeout: float = 180
    ) -> dict[str, Any]:
        """Poll the API until the meeting reaches one of `wanted`; fail with the worker log."""
        deadline = time.monotonic() + timeout
        with self.api() as api:
            while True:
                meeting: dict[str, Any] = api.get(f"/api/v1/meetings/{meeting_id}").json()
                if meeting["status"] in wanted:
                    return meeting
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"meeting stuck in {meeting['status']}:\n{self.worker.log()[-3000:]}"
                    )
                time.sleep(0.5)

    def sign_in(self, page: Page, token: str = API_TOKEN) -> None:
        page.goto("/sign-in")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="session")
def stack(
    postgres: Postgres,
    redis_server: RedisServer,
    whisper_target: str,
    llm_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    media_dir = root / "media"
    media_dir.mkdir()
    database_url = postgres.create_database(migrated=True)
    redis_server.flush()
    worker = ServiceProcess(
        [
            sys.executable,
            "-m",
            "worker",
            f"--hostname=ui-{uuid.uuid4().hex[:6]}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        subprocess_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_server.url,
            MEDIA_DIR=str(media_dir),
            WHISPER_URL=whisper_target,
            LLM_URL=llm_url,
            LOG_JSON="false",
            # A broken recording should fail in seconds, not after the default backoff.
            WORKER_MAX_RETRIES="1",
            WORKER_RETRY_BACKOFF="0.2",
            WORKER_RETRY_BACKOFF_MAX="1",
        ),
        root / "worker.log",
    ).start()
    settings = BackendSettings(
        database_url=database_url,
        redis_url=redis_server.url,
        api_token=API_TOKEN,
        media_dir=media_dir,
        max_upload_mb=MAX_UPLOAD_MB,
        whisper_url=whisper_target,
        llm_url=llm_url,
        log_json=False,
    )
    try:
        worker.wait_until(lambda: " ready." in worker.log(), timeout=60, what="worker ready")
        with ApiServer(create_app(settings)) as api:
            yield Stack(api.url, settings, database_url, media_dir, worker)
    finally:
        worker.stop()
        postgres.drop_database(database_url)


@pytest.fixture(scope="session")
def done_meeting(stack: Stack, spoken_meeting: Any) -> dict[str, Any]:
    """The spoken meeting, uploaded through the API and processed to `done`."""
    meeting_id = stack.upload(spoken_meeting.audio.read_bytes(), "Budget sync")
    meeting = stack.wait_for_status(meeting_id, {"done", "failed"})
    spoken_meeting.assert_analysed(meeting)
    return meeting


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (Debian's build; "
            "Playwright's own browser downloads are not used)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@dataclass
class Watched:
    """What went wrong inside the pages: CSP violations and uncaught script errors."""

    problems: list[str] = field(default_factory=list)

    def console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(f"CSP: {message.text}")

    def page_error(self, error: Any) -> None:
        self.problems.append(f"script error: {error}")


OpenBrowser = Callable[..., "Page"]


@pytest.fixture
def open_browser(
    playwright_driver: Playwright, tmp_path: Path, stack: Stack
) -> Iterator[OpenBrowser]:
    """`open_browser(javascript=True, width=1280)`: a new Chromium with a fresh profile, its
    first page; the test fails if any page broke the CSP or threw."""
    contexts: list[BrowserContext] = []
    watched = Watched()

    def open_page(*, javascript: bool = True, width: int = 1280, height: int = 900) -> Page:
        context = playwright_driver.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(contexts)}"),
            executable_path=str(CHROMIUM),
            # JavaScript off the way the browser's own setting does it: Playwright's switch
            # alone stops scripts but still hides <noscript> content.
            args=CHROMIUM_ARGS + ([] if javascript else ["--blink-settings=scriptEnabled=false"]),
            headless=True,
            java_script_enabled=javascript,
            viewport={"width": width, "height": height},
            accept_downloads=True,
            base_url=stack.url,
        )
        contexts.append(context)
        context.on("page", lambda page: _watch(page, watched))
        page = context.pages[0] if context.pages else context.new_page()
        _watch(page, watched)
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
    assert watched.problems == [], watched.problems


def _watch(page: Page, watched: Watched) -> None:
    page.on("console", watched.console)
    page.on("pageerror", watched.page_error)


def _screenshot(page: Page, name: str) -> None:
    """Write docs/screenshots/<name>-<width>.png when MI_SCREENSHOTS asks for it."""
    if not os.environ.get("MI_SCREENSHOTS"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], None]:
    return _screenshot


@pytest.fixture
def short_session_url(stack: Stack) -> Iterator[str]:
    """A second backend on the same stack whose web sessions last 2 seconds."""
    settings = stack.settings.model_copy(update={"web_session_seconds": 2})
    with ApiServer(create_app(settings)) as api:
        yield api.url
