"""Who may call what: bearer tokens for API clients, the session cookie for the web UI.

`require_api_auth` guards /api. A request that carries an Authorization header, or no
session cookie, goes through `require_token` exactly as before, so bearer clients see no
difference. Only a request with the cookie and no Authorization header is checked as a web
session; if it changes data (POST, DELETE, ...) it must also carry the page's CSRF token in
the X-CSRF-Token header. SameSite=Strict already keeps other sites' requests from carrying the
cookie; the token is the second lock, for browsers or proxies that do not honour it.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from backend.config import BackendSettings
from backend.core.security import bearer_scheme, require_token
from backend.web.session import (
    COOKIE_NAME,
    CSRF_HEADER,
    SessionCheck,
    SessionCodec,
    SessionState,
    WebSession,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN_PATH = "/sign-in"


def session_codec(request: Request) -> SessionCodec:
    """The app's codec, made on first use (settings are only known once the app started)."""
    codec: SessionCodec | None = getattr(request.app.state, "session_codec", None)
    if codec is None:
        settings: BackendSettings = request.app.state.settings
        codec = SessionCodec(settings.api_token.get_secret_value(), settings.web_session_seconds)
        request.app.state.session_codec = codec
    return codec


def check_session(request: Request) -> SessionCheck:
    return session_codec(request).read(request.cookies.get(COOKIE_NAME))


async def require_api_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """Bearer token (API clients) or web session cookie (+ CSRF header to change data)."""
    if credentials is not None or COOKIE_NAME not in request.cookies:
        await require_token(request, credentials)
        return
    check = check_session(request)
    if check.session is None:
        why = "expired" if check.state is SessionState.EXPIRED else "is not valid"
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"Your web session {why}; sign in again at {SIGN_IN_PATH} "
            "(API clients: send `Authorization: Bearer <API_TOKEN>`).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method not in SAFE_METHODS and not SessionCodec.csrf_ok(
        check.session, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Missing or wrong {CSRF_HEADER} header: requests that change data with the "
            "session cookie must send the page's CSRF token; reload the page and retry.",
        )


class NotSignedInError(Exception):
    """A page was asked for without a valid session: the handler sends the browser to sign in."""

    def __init__(self, state: SessionState, next_path: str) -> None:
        super().__init__(state.value)
        self.state = state
        self.next_path = next_path


def sign_in_url(next_path: str = "/", reason: SessionState | None = None) -> str:
    url = f"{SIGN_IN_PATH}?next={quote(next_path, safe='/')}"
    if reason in (SessionState.EXPIRED, SessionState.INVALID):
        url += f"&reason={reason.value}"
    return url


def safe_next(value: str | None) -> str:
    """Only paths on this site: `//evil.example` or `https://...` would be an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def page_session(request: Request) -> WebSession:
    check = check_session(request)
    if check.session is None:
        # After signing in, a GET comes back to the page asked for; a form that was refused
        # is not replayed (the user sees the result of nothing and decides again).
        target = "/"
        if request.method in SAFE_METHODS:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise NotSignedInError(check.state, safe_next(target))
    return check.session


PageSessionDep = Annotated[WebSession, Depends(page_session)]
