"""Bearer auth on /api, open operational endpoints, OpenAPI and JSON errors."""

from __future__ import annotations

import httpx
import pytest

API_PATHS = [
    ("GET", "/api/v1/meetings"),
    ("GET", "/api/v1/meetings/00000000-0000-0000-0000-000000000000"),
    ("DELETE", "/api/v1/meetings/00000000-0000-0000-0000-000000000000"),
    ("POST", "/api/v1/meetings"),
    ("GET", "/api/v1/search?q=budget"),
]


@pytest.mark.parametrize(("method", "path"), API_PATHS)
def test_missing_token_is_401_with_challenge(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    reply = anonymous.request(method, path)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in reply.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token-0123456789abcdef",
        "Bearer test-token-0123456789abcde",  # a prefix of the real one
        "Basic dGVzdDp0ZXN0",
        "test-token-0123456789abcdef",  # no scheme
    ],
)
def test_wrong_token_is_401(anonymous: httpx.Client, header: str) -> None:
    reply = anonymous.get("/api/v1/meetings", headers={"Authorization": header})
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert reply.json()["detail"]


def test_right_token_is_accepted(client: httpx.Client) -> None:
    assert client.get("/api/v1/meetings").status_code == 200


def test_health_needs_no_token(anonymous: httpx.Client) -> None:
    reply = anonymous.get("/health")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"


def test_openapi_documents_bearer_scheme_and_upload_form(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerToken"]["description"],
    }
    create = spec["paths"]["/api/v1/meetings"]["post"]
    assert create["security"] == [{"BearerToken": []}]
    form = create["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"]["format"] == "binary"
    assert "202" in create["responses"]
    assert spec["paths"]["/api/v1/search"]["get"]["security"] == [{"BearerToken": []}]
    assert "security" not in spec["paths"]["/health"]["get"]

    docs = anonymous.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text


def test_unknown_route_and_method_give_json_hints(client: httpx.Client) -> None:
    reply = client.get("/api/v1/nothing-here")
    assert reply.status_code == 404
    assert "/docs" in reply.json()["detail"]
    reply = client.put("/api/v1/meetings")
    assert reply.status_code == 405
    assert "/docs" in reply.json()["detail"]


def test_metrics_count_requests_by_route_template(client: httpx.Client) -> None:
    client.get("/api/v1/meetings/00000000-0000-0000-0000-000000000001")
    body = client.get("/metrics").text
    assert "http_requests_total" in body
    assert 'route="/api/v1/meetings/{meeting_id}"' in body
    assert "00000000-0000-0000-0000-000000000001" not in body


def test_prod_serves_no_api_docs_nor_schema(settings) -> None:
    """The docs page pulls Swagger UI from a CDN and maps the API for anyone: not in prod."""
    from backend.main import create_app
    from mi_testing import ApiServer

    prod = settings.model_copy(update={"app_env": "prod"})
    token = settings.api_token.get_secret_value()
    with ApiServer(create_app(prod)) as api:
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            with httpx.Client(base_url=api.url, headers=headers, timeout=30) as http:
                for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
                    assert http.get(path).status_code == 404, path
        with httpx.Client(
            base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            assert http.get("/api/v1/meetings").status_code == 200  # the API itself serves
