import asyncio
import re

from common.metrics import PrometheusMiddleware, render_latest, route_template


class _Route:
    path = "/items/{item_id}"


async def _app(scope, receive, send):
    scope["route"] = _Route()  # what Starlette's router records for the matched route
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_requests_are_labelled_by_route_template_not_raw_path():
    app = PrometheusMiddleware(_app, service="unit")
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    for item in ("1", "2", "3"):
        scope = {"type": "http", "method": "GET", "path": f"/items/{item}"}
        asyncio.run(app(scope, None, send))

    body, content_type = render_latest()
    text = body.decode()
    assert content_type.startswith("text/plain")
    expected = (
        'http_requests_total{method="GET",route="/items/{item_id}",service="unit",status="404"} 3.0'
    )
    assert expected in text
    assert "/items/1" not in text
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [404] * 3


class _NestedRoute:
    # What FastAPI's lazily included routers put in the scope: the innermost router's path.
    path = "/things/{tid}"
    path_regex = re.compile(r"^/things/(?P<tid>[^/]+)$")


def test_nested_router_prefixes_are_part_of_the_label():
    scope = {"path": "/api/v1/things/7", "route": _NestedRoute()}
    assert route_template(scope) == "/api/v1/things/{tid}"
    assert route_template({"path": "/things/7", "route": _NestedRoute()}) == "/things/{tid}"
    assert route_template({"path": "/nowhere"}) == "unmatched"
