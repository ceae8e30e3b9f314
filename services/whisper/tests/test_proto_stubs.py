"""The committed gRPC stubs are what grpcio-tools makes from the .proto, byte for byte."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "gen_proto.py"


@pytest.fixture(scope="module")
def gen_proto() -> ModuleType:
    spec = importlib.util.spec_from_file_location("whisper_gen_proto", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_match_a_fresh_generation(gen_proto: ModuleType) -> None:
    stale = gen_proto.stale_files()
    assert stale == [], (
        f"stale generated stubs {stale}: run `uv run python {SCRIPT.relative_to(Path.cwd())}` "
        "and commit the result"
    )


def test_stale_check_notices_a_changed_stub(
    gen_proto: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Point the checker at a copy of src/ with one stub edited: it must be reported.
    copy = tmp_path / "src"
    for rel in gen_proto.generated_files() + list(gen_proto.PROTOS):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes((gen_proto.SRC / rel).read_bytes())
    edited = gen_proto.generated_files()[0]
    (copy / edited).write_bytes((copy / edited).read_bytes() + b"# edited by hand\n")
    monkeypatch.setattr(gen_proto, "SRC", copy)
    assert gen_proto.stale_files() == [edited]


def test_generated_code_never_imports_a_top_level_whisper_package(
    gen_proto: ModuleType,
) -> None:
    # `whisper` on PyPI is openai-whisper: generated imports must stay under whisper_service.
    for rel in gen_proto.generated_files():
        text = (gen_proto.SRC / rel).read_text()
        assert not re.search(r"^\s*(from|import)\s+whisper(\.|\s)", text, re.MULTILINE), rel
    from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc

    assert transcriber_pb2_grpc.__name__ == "whisper_service.proto.whisper.v1.transcriber_pb2_grpc"
