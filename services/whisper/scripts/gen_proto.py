"""Regenerate the committed gRPC stubs from whisper/v1/transcriber.proto.

    uv run python services/whisper/scripts/gen_proto.py          # rewrite the stubs
    uv run python services/whisper/scripts/gen_proto.py --check  # exit 1 when they are stale

The stubs are committed so that a fresh clone (and the worker image, which has no
grpcio-tools) works with no build step; tests/test_proto_stubs.py fails when they drift from
the .proto. protoc runs from `src/` so the generated modules import each other as
`whisper_service.proto.whisper.v1...`, never as a top-level `whisper` package.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PROTO_DIR = Path("whisper_service/proto/whisper/v1")
PROTOS = (PROTO_DIR / "transcriber.proto",)
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generated_files() -> list[Path]:
    """Paths, relative to src/, of every file protoc writes for PROTOS."""
    return [proto.with_name(proto.stem + suffix) for proto in PROTOS for suffix in SUFFIXES]


def generate(out_dir: Path) -> list[Path]:
    """Run grpcio-tools' protoc into `out_dir`; return the written files' relative paths."""
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={SRC}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(SRC / proto) for proto in PROTOS),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed ({result.returncode}): {result.stderr.strip()}")
    return generated_files()


def stale_files() -> list[Path]:
    """Committed stubs whose bytes differ from a fresh generation (or that are missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        return [
            rel
            for rel in generate(out)
            if not (SRC / rel).is_file() or (SRC / rel).read_bytes() != (out / rel).read_bytes()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale stubs")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for rel in stale:
            print(f"stale: {rel}")  # noqa: T201
        return 1 if stale else 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for rel in generate(out):
            target = SRC / rel
            data = (out / rel).read_bytes()
            if not target.is_file() or target.read_bytes() != data:
                target.write_bytes(data)
                print(f"wrote {target.relative_to(SRC.parent)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
