"""The client works in the worker's environment, which lacks mi-whisper's [server] extra."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("av", "numpy", "pocketsphinx", "faster_whisper", "ctranslate2", "prometheus_client")
# `import grpc` itself peeks at grpc_health/grpc_reflection when installed (grpc/__init__.py),
# so only the second test, where they are missing, can show the client does without them.
SERVER_ONLY = (*HEAVY, "grpc_health", "grpc_reflection", "grpc_tools")


def test_client_imports_no_server_only_package() -> None:
    code = (
        "import sys, whisper_service.client as c\n"
        "assert c.WhisperClient and c.Transcript\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"the client pulled in {result.stdout.strip()}"


def test_client_imports_even_when_server_packages_are_missing() -> None:
    # Make the server-only packages unimportable, as in the worker image.
    code = (
        "import sys\n"
        f"for name in {SERVER_ONLY!r}: sys.modules[name] = None\n"
        "from whisper_service.client import WhisperClient, AudioRejectedError, "
        "WhisperUnavailableError\n"
        "WhisperClient('127.0.0.1:1', timeout=1).close()\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
