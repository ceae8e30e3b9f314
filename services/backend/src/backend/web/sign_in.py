"""Sign-in and sign-out pages: the API token exchanged for a session cookie."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from backend.api.deps import SettingsDep
from backend.web.auth import SIGN_IN_PATH, check_session, safe_next, session_codec
from backend.web.session import COOKIE_NAME, CSRF_FIELD, SessionCodec
from backend.web.templating import render

router = APIRouter(include_in_schema=False)

NOTICES = {
    "expired": "Your session expired. Sign in again to continue.",
    "invalid": (
        "Your session is no longer valid (the server's API token may have changed). "
        "Sign in again to continue."
    ),
    "signed-out": "You are signed out.",
}
COOKIE_REFUSED = (
    "Your browser did not keep the session cookie, so you are not signed in. Outside "
    "APP_ENV=dev the cookie is sent over HTTPS only: open this site through https:// "
    "(nginx in prod), and allow cookies for it."
)
BAD_SIGN_IN = (
    "That is not this server's API token. Use the value of API_TOKEN from the server's "
    "`.env.<env>` file (for example `grep ^API_TOKEN= .env.dev`)."
)
FOREIGN_ORIGIN = (
    "This sign-in form was sent from another site, so it was refused. Open the sign-in page "
    "of this site and sign in there."
)


def _same_origin(request: Request) -> bool:
    """Browsers send Origin with every form POST; a foreign one is a login CSRF attempt.
    Host names only: behind nginx the Host header loses a non-default port."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or a very old one: nothing to compare
    host = request.headers.get("host", "")
    return urlsplit(origin).hostname == urlsplit(f"//{host}").hostname


def _form(
    request: Request, next_path: str, *, error: str | None = None, notice: str | None = None
) -> Response:
    status_code = status.HTTP_200_OK
    if error == BAD_SIGN_IN:
        status_code = status.HTTP_401_UNAUTHORIZED
    elif error is not None:
        status_code = status.HTTP_403_FORBIDDEN
    return render(
        request,
        "sign_in.html",
        status_code=status_code,
        next_path=next_path,
        error=error,
        notice=notice,
    )


@router.get(SIGN_IN_PATH)
async def sign_in_page(
    request: Request,
    next_path: Annotated[str | None, Query(alias="next")] = None,
    reason: str | None = None,
    check: str | None = None,
) -> Response:
    target = safe_next(next_path)
    if check_session(request).session is not None:
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    if check:
        # We just set the cookie and redirected here: it did not come back.
        return _form(request, target, error=COOKIE_REFUSED)
    return _form(request, target, notice=NOTICES.get(reason or ""))


@router.post(SIGN_IN_PATH)
async def sign_in(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    target = safe_next(next_path)
    if not _same_origin(request):
        return _form(request, target, error=FOREIGN_ORIGIN)
    expected = settings.api_token.get_secret_value()
    # Constant-time, like the bearer check: timing must not reveal a partial match.
    if not secrets.compare_digest(token.strip().encode(), expected.encode()):
        return _form(request, target, error=BAD_SIGN_IN)
    codec = session_codec(request)
    value, _session = codec.issue()
    response = RedirectResponse(
        f"{SIGN_IN_PATH}?check=1&next={quote(target, safe='/')}", status.HTTP_303_SEE_OTHER
    )
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=codec.cookie_max_age,
        path="/",
        httponly=True,  # page scripts never need it: they send the CSRF token instead
        samesite="strict",  # never sent on requests other sites start
        secure=settings.session_cookie_secure,
    )
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    session = check_session(request).session
    if session is not None and not SessionCodec.csrf_ok(session, csrf_token):
        # A live session is only ended by its own page's form (no sign-out by other sites).
        return render(
            request,
            "error.html",
            session=session,
            status_code=status.HTTP_403_FORBIDDEN,
            title="Not signed out",
            message="The sign-out form was stale or foreign; reload the page and sign out again.",
        )
    response = RedirectResponse(f"{SIGN_IN_PATH}?reason=signed-out", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.session_cookie_secure,
    )
    return response
