"""The web UI's sign-in session: a signed, stateless cookie, and the CSRF token bound to it.

Why stateless: the API has one shared token and no user table, so a session only says "this
browser proved it knows API_TOKEN at time T". An HMAC over (random id, issue time) says that
without a session store, so pages keep working while Redis is down, and nothing needs
cleaning up. The signing key is derived from API_TOKEN: rotating the token signs every
browser out at once. The price: signing out deletes the cookie in that browser, but a copy
of it stays valid until it expires (WEB_SESSION_SECONDS); HttpOnly, Secure and
SameSite=Strict are what keep copies from being made.

Cookie value: `<id>.<issued_at>.<signature>`. The lifetime is checked against the current
setting at each request, so shortening WEB_SESSION_SECONDS applies to existing sessions too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

COOKIE_NAME = "mi_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
COOKIE_GRACE_SECONDS = 24 * 3600
"""The cookie outlives the session by a day, so a browser coming back soon after expiry
still sends it and is told "your session expired" instead of meeting a bare sign-in form."""
CLOCK_SKEW_SECONDS = 60
"""Issue times this far in the future are tolerated (several backend hosts, unsynced clocks)."""

_KEY_LABEL = b"meeting-intelligence web session v1"


class SessionState(StrEnum):
    VALID = "valid"
    MISSING = "missing"
    EXPIRED = "expired"
    INVALID = "invalid"
    """Malformed, tampered with, or signed with a previous API_TOKEN."""


@dataclass(frozen=True)
class WebSession:
    id: str
    issued_at: int
    csrf_token: str


@dataclass(frozen=True)
class SessionCheck:
    state: SessionState
    session: WebSession | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SessionCodec:
    """Issues and verifies session cookies for one API_TOKEN and lifetime."""

    def __init__(self, api_token: str, lifetime_seconds: int) -> None:
        self._key = hmac.new(api_token.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self.lifetime_seconds = lifetime_seconds

    @property
    def cookie_max_age(self) -> int:
        return self.lifetime_seconds + COOKIE_GRACE_SECONDS

    def _sign(self, message: str) -> str:
        return _b64(hmac.new(self._key, message.encode(), hashlib.sha256).digest())

    def _session(self, session_id: str, issued_at: int) -> WebSession:
        return WebSession(session_id, issued_at, self._sign(f"csrf.{session_id}"))

    def issue(self, now: float | None = None) -> tuple[str, WebSession]:
        """A new session and its cookie value."""
        issued_at = int(time.time() if now is None else now)
        session_id = secrets.token_urlsafe(16)
        payload = f"{session_id}.{issued_at}"
        return f"{payload}.{self._sign(payload)}", self._session(session_id, issued_at)

    def read(self, value: str | None, now: float | None = None) -> SessionCheck:
        if not value:
            return SessionCheck(SessionState.MISSING)
        parts = value.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return SessionCheck(SessionState.INVALID)
        session_id, issued, signature = parts
        # Constant-time: the comparison must not tell a forger how much of a guess matched.
        if not hmac.compare_digest(signature, self._sign(f"{session_id}.{issued}")):
            return SessionCheck(SessionState.INVALID)
        issued_at = int(issued)
        current = time.time() if now is None else now
        if issued_at > current + CLOCK_SKEW_SECONDS:
            return SessionCheck(SessionState.INVALID)
        if current >= issued_at + self.lifetime_seconds:
            return SessionCheck(SessionState.EXPIRED)
        return SessionCheck(SessionState.VALID, self._session(session_id, issued_at))

    @staticmethod
    def csrf_ok(session: WebSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf_token, str(token))
