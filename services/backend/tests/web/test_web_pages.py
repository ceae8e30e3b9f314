"""The web UI's pages rendered by the real app over real Postgres: list pagination, the
meeting page, search, delete, error pages, and the rules the prod CSP imposes on markup."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, text

from backend.web.templating import CONTENT_SECURITY_POLICY
from mi_testing import ApiServer
from mi_testing.objectstore import MediaUnderTest

API_TOKEN = "test-token-0123456789abcdef"  # conftest's settings use this token
UUID = r"[0-9a-f-]{36}"


@pytest.fixture
def browser(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        reply = http.post("/sign-in", data={"token": API_TOKEN})
        assert reply.status_code == 303
        yield http


class MarkupAudit(HTMLParser):
    """Collects what a strict CSP (no 'unsafe-inline') would block, and the page's links."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.labels_for: set[str] = set()
        self.controls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name in attributes:
            if name == "style":
                self.problems.append(f"style= on <{tag}>")
            if name.startswith("on"):
                self.problems.append(f"{name}= handler on <{tag}>")
        if tag == "a" and attributes.get("href"):
            self.links.append(str(attributes["href"]))
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag == "label" and attributes.get("for"):
            self.labels_for.add(str(attributes["for"]))
        if tag in ("input", "textarea", "select") and attributes.get("type") != "hidden":
            self.controls.append(str(attributes.get("id")))


def audit(page: httpx.Response) -> MarkupAudit:
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    parser = MarkupAudit()
    parser.feed(page.text)
    assert parser.problems == [], parser.problems
    duplicates = {i for i in parser.ids if parser.ids.count(i) > 1}
    assert not duplicates, f"duplicate ids {duplicates}"
    unlabelled = [c for c in parser.controls if c not in parser.labels_for]
    assert not unlabelled, f"form controls without a <label for>: {unlabelled}"
    return parser


def test_every_page_obeys_the_csp_and_labels_its_controls(
    browser: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    meeting_id = add_meeting(
        title="Budget sync",
        transcript="Alice will send the budget report. Bob agrees",
        summary="Budget report due.",
        action_items=[("Send the budget report", "Alice", "Friday")],
    )
    failed_id = add_meeting(title="Broken", status="failed")
    for path in (
        "/",
        "/upload",
        "/search",
        "/search?q=budget",
        f"/meetings/{meeting_id}",
        f"/meetings/{failed_id}",
        f"/meetings/{meeting_id}/delete",
        f"/meetings/{uuid.uuid4()}",
        "/no-such-page",
    ):
        audit(browser.get(path))
    browser.cookies.clear()
    audit(browser.get("/sign-in"))


def test_static_files_are_served_and_versioned(browser: httpx.Client) -> None:
    page = browser.get("/").text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert "?v=" in asset
        reply = browser.get(asset)
        assert reply.status_code == 200, asset
    assert browser.get("/static/app.css").headers["content-type"].startswith("text/css")


def test_list_pages_by_keyset_newest_first_without_gaps_or_repeats(
    browser: httpx.Client, database_url: str, add_meeting: Callable[..., uuid.UUID]
) -> None:
    # Older than anything else in this module's database: they are the end of the list.
    start = datetime(2000, 1, 1, tzinfo=UTC)
    ids = [
        add_meeting(title=f"Meeting {i:02d}", created_at=start + timedelta(minutes=i))
        for i in range(45)
    ]
    newest_first = [str(i) for i in reversed(ids)]
    with create_engine(database_url).connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM meetings")).scalar_one()

    pages: list[tuple[str, list[str]]] = []
    url: str | None = "/"
    while url:
        page = browser.get(url)
        assert page.status_code == 200
        pages.append((url, re.findall(rf'data-meeting-id="({UUID})"', page.text)))
        older = re.search(r'href="(/\?before=[^"]+)" rel="next"', page.text)
        url = older.group(1) if older else None
    seen = [ident for _, shown in pages for ident in shown]
    assert len(seen) == len(set(seen)) == total  # every meeting once
    assert seen[-45:] == newest_first
    assert all(len(shown) == 20 for _, shown in pages[:-1])

    # Back from the last page by the "Newer" links: the same pages in reverse.
    last = browser.get(pages[-1][0]).text
    newer = re.search(r'href="(/\?after=[^"]+)" rel="prev"', last)
    assert newer
    back = browser.get(newer.group(1)).text
    assert re.findall(rf'data-meeting-id="({UUID})"', back) == pages[-2][1]

    # A meeting uploaded meanwhile does not shift the older pages.
    add_meeting(title="Latecomer")
    again = browser.get(pages[1][0]).text
    assert re.findall(rf'data-meeting-id="({UUID})"', again) == pages[1][1]


def test_a_damaged_page_link_is_a_clear_400(browser: httpx.Client) -> None:
    reply = browser.get("/?before=not-a-cursor")
    assert reply.status_code == 400
    assert "page link is damaged" in reply.text
    assert "Traceback" not in reply.text


def test_meeting_page_shows_results_player_and_exports(
    browser: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    meeting_id = add_meeting(
        title="Budget <sync>",
        transcript="Alice will send the budget report. Bob will review the design",
        summary="Budget report and design review.",
        action_items=[("Send the budget report", "Alice", "Friday"), ("Review", None, None)],
    )
    page = browser.get(f"/meetings/{meeting_id}?t=2.5")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Budget &lt;sync&gt;</h1>" in text  # escaped, never markup
    assert "Owner: Alice" in text and "Due: Friday" in text and "Owner: unassigned" in text
    assert f'src="/api/v1/meetings/{meeting_id}/audio"' in text
    # Segments start at 0 and 2 (conftest): t=2.5 falls in the second, which is the target.
    segments = re.findall(r'<li class="segment( is-target)?"[^>]*data-start="([\d.]+)"', text)
    assert segments == [("", "0"), (" is-target", "2")]
    assert 'id="moment"' in text
    for fmt in ("srt", "vtt", "txt", "json"):
        assert f"/transcript?format={fmt}" in text
    assert f"/api/v1/meetings/{meeting_id}/notes.md" in text


def test_processing_and_failed_meetings_say_where_they_are(
    browser: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    queued = browser.get(f"/meetings/{add_meeting(title='Waiting', status='transcribing')}").text
    assert 'aria-current="step">Transcribing' in queued
    assert "Exports are available once the transcript is ready" in queued

    failed_id = add_meeting(title="Broken", status="failed")
    failed = browser.get(f"/meetings/{failed_id}").text
    assert "Processing failed" in failed and "upload it again" in failed


@pytest.mark.parametrize("path", ["/meetings/not-a-uuid", f"/meetings/{uuid.UUID(int=7)}"])
def test_unknown_meeting_is_a_404_page(browser: httpx.Client, path: str) -> None:
    reply = browser.get(path)
    assert reply.status_code == 404
    assert "This meeting does not exist" in reply.text
    assert 'href="/"' in reply.text


def test_unknown_page_is_html_but_unknown_api_path_stays_json(browser: httpx.Client) -> None:
    page = browser.get("/nothing-here")
    assert page.status_code == 404
    assert "There is no page at /nothing-here" in page.text
    api = browser.get("/api/v1/nothing-here")
    assert api.status_code == 404
    assert "/docs" in api.json()["detail"]


def test_delete_needs_confirmation_and_the_form_token(
    browser: httpx.Client, add_meeting: Callable[..., uuid.UUID], media: MediaUnderTest
) -> None:
    meeting_id = add_meeting(title="Doomed")
    media.put(f"{meeting_id.hex}.wav", b"RIFF")
    confirm = browser.get(f"/meetings/{meeting_id}/delete")
    assert "Delete “Doomed”?" in confirm.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', confirm.text)
    assert token

    forged = browser.post(f"/meetings/{meeting_id}/delete", data={"csrf_token": "x"})
    assert forged.status_code == 403
    assert browser.get(f"/meetings/{meeting_id}").status_code == 200

    done = browser.post(f"/meetings/{meeting_id}/delete", data={"csrf_token": token.group(1)})
    assert done.status_code == 303 and done.headers["location"] == "/?deleted=1"
    assert "The meeting was deleted" in browser.get("/?deleted=1").text
    assert f"{meeting_id.hex}.wav" not in media.names()
    gone = browser.post(f"/meetings/{meeting_id}/delete", data={"csrf_token": token.group(1)})
    assert gone.status_code == 404


def test_search_links_hits_to_the_moment_they_were_said(
    browser: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    meeting_id = add_meeting(
        title="Planning",
        transcript="We opened the meeting. The zeppelin report is late. Nothing else",
        summary="Mostly about the zeppelin.",
    )
    page = browser.get("/search", params={"q": "zeppelin"})
    assert page.status_code == 200
    assert "1 meeting matches" in page.text
    assert "<mark>" in page.text
    links = [link for link in audit(page).links if link.startswith(f"/meetings/{meeting_id}")]
    assert links, page.text
    query = parse_qs(urlsplit(links[0]).query)
    assert query["t"] == ["2.0"]  # the second segment (conftest: 2 s apart) says it
    assert urlsplit(links[0]).fragment == "moment"


def test_search_page_handles_bad_queries(browser: httpx.Client) -> None:
    long = browser.get("/search", params={"q": "x" * 201})
    assert long.status_code == 422
    assert "shorten it to 200" in long.text
    empty = browser.get("/search", params={"q": "   "})
    assert empty.status_code == 200
    assert "matches" not in empty.text
    odd = browser.get("/search", params={"q": 'budget "unclosed -', "page": "x"})
    assert odd.status_code == 200


def test_upload_page_carries_the_servers_limits(browser: httpx.Client) -> None:
    page = browser.get("/upload").text
    assert 'data-max-bytes="1048576"' in page  # conftest: MAX_UPLOAD_MB=1
    assert 'data-max-mb="1"' in page
    assert ".wav" in page and ".mp3" in page
    assert 'name="vocabulary"' in page
    assert "needs JavaScript" in page  # the <noscript> note


def test_vocabulary_field_is_accepted_and_ignored_by_the_api(
    client: httpx.Client, wav: bytes
) -> None:
    reply = client.post(
        "/api/v1/meetings",
        files={"file": ("a.wav", wav, "audio/wav")},
        data={"title": "With hint", "vocabulary": "Kubernetes, Alice, KEDA"},
    )
    assert reply.status_code == 202, reply.text
