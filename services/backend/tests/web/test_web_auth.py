"""The web UI's sign-in: token for cookie, the cookie on pages and on the API (CSRF for changes),
expiry, sign-out; and that bearer clients see no difference. Real uvicorn and Postgres."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from backend.config import BackendSettings
from backend.main import create_app
from backend.web.session import COOKIE_NAME, CSRF_HEADER, SessionCodec
from mi_testing import ApiServer

API_TOKEN = "test-token-0123456789abcdef"  # conftest's settings use this token


def csrf_from(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(http: httpx.Client, token: str = API_TOKEN, next_path: str = "/") -> httpx.Response:
    return http.post("/sign-in", data={"token": token, "next": next_path})


@pytest.fixture
def browser(api: ApiServer) -> Iterator[httpx.Client]:
    """A cookie-keeping client with no Authorization header, like a browser."""
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http


@pytest.fixture
def signed_in(browser: httpx.Client) -> httpx.Client:
    reply = sign_in(browser)
    assert reply.status_code == 303, reply.text
    return browser


def test_pages_send_an_unauthenticated_browser_to_sign_in(browser: httpx.Client) -> None:
    for path in ("/", "/upload", "/search?q=x", f"/meetings/{uuid.uuid4()}"):
        reply = browser.get(path)
        assert reply.status_code == 303, path
        location = reply.headers["location"]
        assert location.startswith("/sign-in?next=/"), location
        assert "reason=" not in location  # never signed in: nothing expired
    page = browser.get("/sign-in")
    assert page.status_code == 200
    assert 'type="password"' in page.text and 'for="token"' in page.text


def test_wrong_token_is_refused_with_a_message_and_no_cookie(browser: httpx.Client) -> None:
    reply = sign_in(browser, token="not-the-token-at-all")
    assert reply.status_code == 401
    assert "not this server&#39;s API token" in reply.text
    assert COOKIE_NAME not in reply.cookies
    assert browser.get("/").status_code == 303


def test_sign_in_sets_a_strict_httponly_cookie_and_returns_to_the_page(
    browser: httpx.Client,
) -> None:
    reply = sign_in(browser, next_path="/search?q=budget")
    assert reply.status_code == 303
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age="):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # APP_ENV=dev: plain http must keep working
    # The check hop confirms the browser kept the cookie, then goes where the user was going.
    check = browser.get(reply.headers["location"])
    assert check.status_code == 303
    assert check.headers["location"] == "/search?q=budget"
    assert browser.get("/search?q=budget").status_code == 200


def test_cookie_is_secure_outside_dev(settings: BackendSettings) -> None:
    staging = settings.model_copy(update={"app_env": "staging"})
    with ApiServer(create_app(staging)) as server, httpx.Client(base_url=server.url) as http:
        reply = sign_in(http)
        assert reply.status_code == 303
        assert "secure" in reply.headers["set-cookie"].lower()


def test_refused_cookie_is_explained(browser: httpx.Client) -> None:
    reply = sign_in(browser)
    browser.cookies.clear()  # what a browser does with a Secure cookie over plain http
    page = browser.get(reply.headers["location"])
    assert page.status_code == 403
    assert "did not keep the session cookie" in page.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_next_cannot_leave_the_site(browser: httpx.Client, target: str) -> None:
    reply = sign_in(browser, next_path=target)
    check = browser.get(reply.headers["location"])
    assert check.headers["location"] == "/"


def test_sign_in_from_another_site_is_refused(browser: httpx.Client) -> None:
    reply = browser.post(
        "/sign-in", data={"token": API_TOKEN}, headers={"Origin": "https://evil.example"}
    )
    assert reply.status_code == 403
    assert "another site" in reply.text
    assert COOKIE_NAME not in reply.cookies


def test_session_cookie_reads_the_api_and_needs_csrf_to_change_it(
    signed_in: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    meeting_id = add_meeting(title="Keep me", transcript="Hello there.")
    assert signed_in.get(f"/api/v1/meetings/{meeting_id}").status_code == 200
    assert signed_in.get("/api/v1/meetings").status_code == 200

    refused = signed_in.delete(f"/api/v1/meetings/{meeting_id}")
    assert refused.status_code == 403
    assert CSRF_HEADER in refused.json()["detail"]
    wrong = signed_in.delete(f"/api/v1/meetings/{meeting_id}", headers={CSRF_HEADER: "nope"})
    assert wrong.status_code == 403
    assert signed_in.get(f"/api/v1/meetings/{meeting_id}").status_code == 200  # still there

    token = csrf_from(signed_in.get("/").text)
    deleted = signed_in.delete(f"/api/v1/meetings/{meeting_id}", headers={CSRF_HEADER: token})
    assert deleted.status_code == 204


def test_bearer_clients_are_unaffected(
    client: httpx.Client, signed_in: httpx.Client, add_meeting: Callable[..., uuid.UUID]
) -> None:
    # No CSRF header, no cookie: the bearer token alone changes data, as before.
    meeting_id = add_meeting(title="Bearer")
    assert client.delete(f"/api/v1/meetings/{meeting_id}").status_code == 204
    # A wrong bearer token is refused even when a valid session cookie rides along.
    reply = signed_in.get("/api/v1/meetings", headers={"Authorization": "Bearer wrong-0123456789"})
    assert reply.status_code == 401
    assert "Invalid bearer token" in reply.json()["detail"]


def test_a_tampered_cookie_is_refused(browser: httpx.Client) -> None:
    sign_in(browser)
    value = browser.cookies[COOKIE_NAME]
    session_id, issued, signature = value.split(".")
    browser.cookies.set(COOKIE_NAME, f"{session_id}.{int(issued) + 3600}.{signature}")
    reply = browser.get("/")
    assert reply.status_code == 303
    assert "reason=invalid" in reply.headers["location"]
    api = browser.get("/api/v1/meetings")
    assert api.status_code == 401
    assert "sign in again" in api.json()["detail"]


def test_an_expired_session_gets_a_clear_page(settings: BackendSettings) -> None:
    short = settings.model_copy(update={"web_session_seconds": 1})
    with ApiServer(create_app(short)) as server, httpx.Client(base_url=server.url) as http:
        sign_in(http)
        assert http.get("/").status_code == 200
        time.sleep(1.2)
        reply = http.get("/upload")
        assert reply.status_code == 303
        assert reply.headers["location"] == "/sign-in?next=/upload&reason=expired"
        page = http.get(reply.headers["location"])
        assert "Your session expired" in page.text
        api = http.get("/api/v1/meetings")
        assert api.status_code == 401
        assert "expired" in api.json()["detail"]


def test_rotating_the_api_token_signs_every_browser_out(settings: BackendSettings) -> None:
    old = SessionCodec(API_TOKEN, 3600)
    value, _ = old.issue()
    rotated = SessionCodec("another-token-0123456789abc", 3600)
    assert rotated.read(value).session is None
    assert old.read(value).session is not None


def test_sign_out_needs_the_form_token_and_ends_the_session(signed_in: httpx.Client) -> None:
    refused = signed_in.post("/sign-out", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert signed_in.get("/").status_code == 200

    token = csrf_from(signed_in.get("/").text)
    reply = signed_in.post("/sign-out", data={"csrf_token": token})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/sign-in?reason=signed-out"
    assert COOKIE_NAME not in signed_in.cookies
    assert "You are signed out" in signed_in.get(reply.headers["location"]).text
    assert signed_in.get("/").status_code == 303
