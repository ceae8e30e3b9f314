"""The service credential against the real server (`python -m whisper_service`, pocketsphinx):
staging refuses calls without SERVICE_TOKEN, health stays open for probes, prod hides its
methods (no reflection), and staging without a token does not start at all."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common import grpc_health, service_auth
from mi_testing import services, subprocess_env
from whisper_service.client import WhisperClient, WhisperUnavailableError
from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc

TOKEN = "staging-service-token-0123456789abcdef"


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services.whisper(
        tmp_path_factory.mktemp("staging"), APP_ENV="staging", SERVICE_TOKEN=TOKEN
    ) as target:
        yield target


def _stub(target: str) -> pb_grpc.TranscriberStub:
    return pb_grpc.TranscriberStub(grpc.insecure_channel(target))


@pytest.mark.parametrize("metadata", [(), ((service_auth.HEADER, "not-the-token"),)])
def test_a_call_without_the_credential_is_unauthenticated(staging: str, metadata) -> None:
    stub = _stub(staging)
    with pytest.raises(grpc.RpcError) as unary:
        stub.GetEngineInfo(pb.GetEngineInfoRequest(), timeout=10, metadata=metadata)
    assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "SERVICE_TOKEN" in unary.value.details()
    # Streaming calls too, before a byte of audio is read.
    with pytest.raises(grpc.RpcError) as streamed:
        stub.Transcribe(iter([pb.TranscribeRequest(audio_chunk=b"x")]), timeout=10)
    assert streamed.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_call_with_the_credential_is_answered(staging: str, alice_wav: Path) -> None:
    with WhisperClient(staging, token=TOKEN) as client:
        assert client.engine_info().engine == "pocketsphinx"
        transcript = client.transcribe_file(alice_wav)
    assert {"alice", "budget"} <= set(transcript.text.split())


def test_the_client_says_what_is_wrong_without_the_credential(staging: str) -> None:
    with WhisperClient(staging) as client, pytest.raises(WhisperUnavailableError) as info:
        client.engine_info()
    assert "refused the service credential" in str(info.value)
    assert "SERVICE_TOKEN" in str(info.value)


def test_health_answers_probes_without_the_credential(staging: str) -> None:
    grpc_health.check(staging, timeout=5)  # raises NotServingError otherwise


def _list_services(target: str, metadata: tuple[tuple[str, str], ...] = ()) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(grpc.insecure_channel(target))
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10, metadata=metadata))
    return [s.name for s in reply.list_services_response.service]


def test_staging_lists_its_methods_only_to_a_caller_with_the_credential(staging: str) -> None:
    assert "whisper.v1.Transcriber" in _list_services(staging, ((service_auth.HEADER, TOKEN),))
    with pytest.raises(grpc.RpcError) as info:
        _list_services(staging)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_prod_has_no_reflection(tmp_path: Path) -> None:
    with services.whisper(tmp_path, APP_ENV="prod", SERVICE_TOKEN=TOKEN) as target:
        with pytest.raises(grpc.RpcError) as info:
            _list_services(target, ((service_auth.HEADER, TOKEN),))
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with WhisperClient(target, token=TOKEN) as client:
            assert client.engine_info().engine == "pocketsphinx"


@pytest.mark.parametrize("app_env", ["staging", "prod"])
def test_staging_and_prod_do_not_start_without_a_credential(app_env: str) -> None:
    env = subprocess_env(APP_ENV=app_env, WHISPER_PORT="0", WHISPER_METRICS_PORT="0")
    env.pop("SERVICE_TOKEN", None)
    proc = subprocess.run(
        [sys.executable, "-m", "whisper_service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "SERVICE_TOKEN is not set" in proc.stderr
