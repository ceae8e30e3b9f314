"""One database and one API server per module for the exports and web UI tests.

The parent conftest gives each test its own database and uvicorn (about 0.7 s each); these
tests only add meetings with fresh ids and sign in with fresh cookie jars, so sharing both per
module keeps them isolated enough and cuts their time in the default `tests` session by
three quarters. A test that needs an empty database or other settings starts its own server.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend.config import BackendSettings
from backend.main import create_app
from mi_testing import ApiServer, free_port, objectstore
from mi_testing.objectstore import MediaUnderTest
from mi_testing.stores import Postgres, RedisServer

API_TOKEN = "test-token-0123456789abcdef"  # the parent conftest's token


@pytest.fixture(scope="module")
def database_url(postgres: Postgres) -> Iterator[str]:
    url = postgres.create_database(migrated=True)
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="module")
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="module")
def media(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> MediaUnderTest:
    """As the plugin's `media`, for the module: a directory, or a bucket (MI_MEDIA_STORE=s3)."""
    scratch = tmp_path_factory.mktemp("scratch")
    if objectstore.chosen_store() == "s3":
        return objectstore.s3_media(request.getfixturevalue("s3_server"), scratch)
    return objectstore.local_media(tmp_path_factory.mktemp("media"), scratch)


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, media: MediaUnderTest) -> BackendSettings:
    # As the parent conftest's: whisper and llm point at ports nobody listens on.
    return BackendSettings(
        database_url=database_url,
        redis_url=redis_url,
        api_token=API_TOKEN,
        **media.fields,
        max_upload_mb=1,
        whisper_url=f"127.0.0.1:{free_port()}",
        llm_url=f"http://127.0.0.1:{free_port()}",
    )


@pytest.fixture(scope="module")
def api(settings: BackendSettings) -> Iterator[ApiServer]:
    with ApiServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
def anonymous(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http
