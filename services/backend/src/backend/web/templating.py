"""Jinja2 rendering for the pages, and the headers every page carries.

Pages set their own Content-Security-Policy: scripts, styles and media from this origin only,
nothing inline. The templates and scripts are written to need nothing more (no inline
`<script>`, `<style>` or `style=`), and the browser tests run under this policy.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from backend.web.session import CSRF_FIELD, WebSession

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # Pages hold the CSRF token and private meeting data: never cached by the browser or
    # anything in between.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

STATUS_LABELS = {
    "queued": "Queued",
    "transcribing": "Transcribing",
    "analyzing": "Analyzing",
    "done": "Done",
    "failed": "Failed",
}
PIPELINE_STEPS = ("queued", "transcribing", "analyzing", "done")
IN_PROGRESS = frozenset({"queued", "transcribing", "analyzing"})


def clock(seconds: float | None) -> str:
    """12:05 or 1:02:05: the time of a segment as players show it."""
    total = max(0, int(seconds or 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment.utcoffset() is not None else str(value)


def iso(value: datetime | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.isoformat()


def file_size(size: int | None) -> str:
    amount = float(size or 0)
    for unit in ("bytes", "KiB", "MiB"):
        if amount < 1024 or unit == "MiB":
            return f"{amount:.0f} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"  # pragma: no cover - the loop always returns


@cache
def static_url(name: str) -> str:
    """`/static/app.css?v=<hash>`: a new file gets a new URL, so browsers never mix versions."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt variable fails the render (and its test)
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(clock=clock, when=when, iso=iso, file_size=file_size)
    env.globals.update(
        static_url=static_url,
        status_labels=STATUS_LABELS,
        pipeline_steps=PIPELINE_STEPS,
        in_progress=IN_PROGRESS,
        csrf_field=CSRF_FIELD,
    )
    return env


TEMPLATES = _environment()


def render(
    request: Request,
    template: str,
    *,
    session: WebSession | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    body = TEMPLATES.get_template(template).render(
        request=request, session=session, path=request.url.path, **context
    )
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)
