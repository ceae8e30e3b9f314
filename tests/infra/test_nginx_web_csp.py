"""The prod nginx lets the web UI's own Content-Security-Policy through for exactly the UI's
paths, and keeps its `default-src 'none'` for the API: checked against the app's real routes,
so a new page cannot be forgotten in the map."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.web import ROUTERS
from backend.web.templating import STATIC_PREFIX

TEMPLATE = Path(__file__).resolve().parents[2] / "infra/nginx/templates/default.conf.template"
SAMPLE_ID = "00000000-0000-0000-0000-000000000000"


def csp_map() -> list[tuple[re.Pattern[str], str]]:
    block = re.search(
        r"map \$uri \$content_security_policy \{\n(.*?)\n\}", TEMPLATE.read_text(), re.S
    )
    assert block, "the CSP map is gone from the nginx template"
    entries = []
    for line in block.group(1).splitlines():
        found = re.match(r'\s+~(\S+)\s+"(.*)";', line)
        if found:
            entries.append((re.compile(found.group(1)), found.group(2)))
    return entries


def policy_for(path: str) -> str:
    """What nginx's map gives `path` (regexes in order, then the default)."""
    for pattern, value in csp_map():
        if pattern.search(path):
            return value
    default = re.search(r'\s+default\s+"(.*)";', TEMPLATE.read_text())
    assert default
    return default.group(1)


def web_paths() -> list[str]:
    paths = [f"{STATIC_PREFIX}/app.css"]
    for router in ROUTERS:
        for route in router.routes:
            path = str(getattr(route, "path", ""))
            assert path, route
            paths.append(path.replace("{meeting_id}", SAMPLE_ID))
    return paths


def test_every_web_ui_path_keeps_the_backends_policy() -> None:
    paths = web_paths()
    assert "/" in paths and f"/meetings/{SAMPLE_ID}" in paths and "/static/app.css" in paths
    assert {path: policy_for(path) for path in paths} == dict.fromkeys(paths, "")


@pytest.mark.parametrize(
    "path", ["/api/v1/meetings", f"/api/v1/meetings/{SAMPLE_ID}/audio", "/health", "/uploads"]
)
def test_the_api_keeps_the_strict_default(path: str) -> None:
    assert policy_for(path) == "default-src 'none'; frame-ancestors 'none'"
