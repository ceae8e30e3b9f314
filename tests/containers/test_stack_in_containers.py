"""The stack as real containers on a real Docker engine (`uv run nox -s containers`).

The session starts (or reuses) an engine, builds stand-ins for the third-party images when no
registry answers, builds the four service images, then runs the pipeline through
`inv up --runtime compose`: dev (development images, sources mounted) and staging (the
production images, read-only roots, no capabilities). Each stack is taken down with its
volumes; nothing is left running. Slow (minutes, most of it the first build), so it runs
only in that session: elsewhere these tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        not os.environ.get("MI_CONTAINERS"),
        reason="needs a Docker engine and minutes: run `uv run nox -s containers`",
    ),
]

# Budgets for the production images (docker image inspect's Size), raised deliberately when a
# capability needs it: the backend's 300 MB by 20 for the recordings store's S3 client
# (boto3/botocore, ~32 MB), the llm's by 100 for embeddings (onnxruntime, numpy, tokenizers).
SIZE_LIMITS_MB = {"backend": 320, "worker": 300, "llm": 400, "whisper": 900}

Run = Callable[..., subprocess.CompletedProcess[str]]
INV = (sys.executable, "-m", "invoke")


def _api(values: dict[str, str]) -> tuple[str, str]:
    """The API's published address and token, from an env file's values."""
    return f"http://127.0.0.1:{values['BACKEND_PORT']}", values["API_TOKEN"]


def env_values(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )


def test_production_images_fit_their_size_budget(images: dict[str, dict[str, Any]]) -> None:
    built = images["staging"]["images"]
    assert set(SIZE_LIMITS_MB) <= set(built), built
    over = {
        name: f"{built[name]['size_bytes'] / 1e6:.0f} MB > {limit} MB"
        for name, limit in SIZE_LIMITS_MB.items()
        if built[name]["size_bytes"] > limit * 1e6
    }
    assert not over, f"images over budget: {over}"


def test_an_unchanged_rebuild_comes_from_the_cache(
    images: dict[str, dict[str, Any]], report: dict[str, Any]
) -> None:
    # `images` built everything twice; the second time nothing had changed, so no RUN step
    # (apt, uv sync) may run again: a layer order that busts the cache fails here.
    for env in ("staging", "dev"):
        for name, image in report["rebuild"][env]["images"].items():
            assert image["ran_steps"] == [], f"{env} {name} rebuilt: {image['ran_steps']}"


def test_the_build_log_tells_executed_steps_from_cached_ones(
    standins: dict[str, str],
    stack_env: dict[str, str],
    images_module: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the cache test above relies on, against BuildKit's real output.
    for key in ("DOCKER_HOST", "PATH"):
        if stack_env.get(key):
            monkeypatch.setenv(key, stack_env[key])
    base = standins.get("PYTHON_IMAGE") or "python:3.11-slim-bookworm"
    (tmp_path / "Dockerfile").write_text(
        f'FROM {base}\nARG NONCE\nRUN echo "$NONCE" > /nonce\nCMD ["true"]\n'
    )
    builder = images_module.find_builder()
    nonce = {"NONCE": str(time.time_ns())}
    tag = "mi-containers/cache-probe:test"
    try:
        first, second = (
            images_module.docker_build(
                builder, context=tmp_path, tag=tag, args=nonce, what="the cache probe"
            )
            for _ in range(2)
        )
    finally:
        subprocess.run(["docker", "rmi", "--force", tag], capture_output=True, check=False)
    # BuildKit names a step with its build args expanded.
    assert first.ran == [f'RUN echo "{nonce["NONCE"]}" > /nonce'], first.ran
    assert second.ran == [], second.ran


def test_dev_pipeline_through_compose(
    images: dict[str, dict[str, Any]],
    run: Run,
    checkout: Path,
    spoken_meeting: Any,
    compose_stack: Callable[..., Any],
    report: dict[str, Any],
) -> None:
    values = env_values(checkout / ".env.dev")
    with compose_stack(run, "dev"):
        health = run(*INV, "health", "--env", "dev", "--wait", "60")
        assert health.returncode == 0, health.stdout + health.stderr
        for check in ("postgres", "redis", "backend", "whisper", "llm", "worker"):
            assert check in health.stdout
        started = time.monotonic()
        meeting = spoken_meeting.upload_and_wait(*_api(values), timeout=240)
        report.setdefault("pipeline_seconds", {})["dev"] = round(time.monotonic() - started, 1)
        spoken_meeting.assert_analysed(meeting)


def test_staging_pipeline_on_the_hardened_production_images(
    images: dict[str, dict[str, Any]],
    ops_image: str,
    run: Run,
    checkout: Path,
    spoken_meeting: Any,
    compose_stack: Callable[..., Any],
    report: dict[str, Any],
) -> None:
    # staging publishes no Postgres/Redis port, so `inv health` cannot reach them from here:
    # `up --wait` (every compose healthcheck) and a meeting end to end prove the stack.
    values = env_values(checkout / ".env.staging")
    with compose_stack(run, "staging"):
        started = time.monotonic()
        meeting = spoken_meeting.upload_and_wait(*_api(values), timeout=240)
        report.setdefault("pipeline_seconds", {})["staging"] = round(time.monotonic() - started, 1)
        spoken_meeting.assert_analysed(meeting)
        # MEDIA_STORE=s3: the recording lives in the objectstore container's bucket, and the
        # API streams it back from there (a byte range, as a player seeks).
        url, token = _api(values)
        audio = httpx.get(
            f"{url}/api/v1/meetings/{meeting['id']}/audio",
            headers={"Authorization": f"Bearer {token}", "Range": "bytes=0-3"},
            timeout=30,
        )
        assert audio.status_code == 206 and audio.content == b"RIFF", audio.text[:300]
        # The backup job's image (what Kubernetes' CronJob runs) on this stack's network,
        # read-only like in the cluster: a verified archive lands in the bucket.
        database = (
            f"postgresql+psycopg://{values['POSTGRES_USER']}:{values['POSTGRES_PASSWORD']}"
            f"@postgres:5432/{values['POSTGRES_DB']}"
        )
        settings = {
            "APP_ENV": "staging",
            "DATABASE_URL": database,
            "MEDIA_STORE": "s3",
            "S3_ENDPOINT_URL": "http://objectstore:9000",
            "S3_BUCKET": values["S3_BUCKET"],
            "S3_ACCESS_KEY_ID": values["S3_ACCESS_KEY_ID"],
            "S3_SECRET_ACCESS_KEY": values["S3_SECRET_ACCESS_KEY"],
            "BACKUP_WORK_DIR": "/tmp/backup",
            "BACKUP_KEY": values["BACKUP_KEY"],  # the job signs what it uploads
        }
        job = run(
            "docker",
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--network",
            "mi-staging_default",
            *[arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")],
            ops_image,
            timeout=600,
        )
        assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
        assert "uploaded mi-staging-" in job.stdout and "backups/staging/" in job.stdout


def test_a_broken_dockerfile_fails_the_build_naming_the_service(
    standins: dict[str, str], stack_env: dict[str, str], checkout: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(checkout, broken, ignore=shutil.ignore_patterns(".data", ".models"))
    dockerfile = broken / "services/llm/Dockerfile"
    text = dockerfile.read_text()
    assert "COPY services/llm/ services/llm/" in text, "update the test: the COPY moved"
    dockerfile.write_text(
        text.replace("COPY services/llm/ services/llm/", "COPY services/llm/gone/ services/llm/")
    )
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/airgap/images.py",
            "services",
            "--env",
            "dev",
            "--service",
            "llm",
        ],
        cwd=broken,
        capture_output=True,
        text=True,
        env={**stack_env, "IMAGE_PREFIX": "mi-broken"},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = proc.stderr
    assert "error: the llm image (services/llm/Dockerfile, target development) failed" in error
    assert "gone" in error, error  # BuildKit's own words about the missing path follow


def _as_prod_runs_nginx(checkout: Path) -> list[str]:
    """`docker run` flags for what compose.prod.yaml gives nginx: the same read-only root,
    tmpfs mounts, dropped and added capabilities and no-new-privileges (not root's defaults)."""
    from ruamel.yaml import YAML

    prod = YAML(typ="safe", pure=True).load(
        (checkout / "infra/compose/compose.prod.yaml").read_text()
    )
    nginx = prod["services"]["nginx"]
    flags = ["--read-only"] if nginx.get("read_only") else []
    for path in nginx.get("tmpfs", []):
        flags += ["--tmpfs", path]
    for cap in nginx.get("cap_drop", []):
        flags += ["--cap-drop", cap]
    for cap in nginx.get("cap_add", []):
        flags += ["--cap-add", cap]
    for option in nginx.get("security_opt", []):
        flags += ["--security-opt", option]
    assert "--cap-drop" in flags and "ALL" in flags, "prod drops every capability"
    assert nginx.get("group_add") == ["${TLS_KEY_GID:-0}"], "prod reads the key by its group"
    return flags


def test_the_prod_edge_config_loads_in_the_nginx_image(
    standins: dict[str, str], run: Run, checkout: Path, tmp_path: Path
) -> None:
    """nginx as prod runs it (no CAP_DAC_OVERRIDE) reads a key that a regular user made:
    owned by that user, mode 0640, through the key's group; without the group it cannot."""
    image = standins.get("NGINX_IMAGE") or "nginx:1.28-alpine"
    certs = tmp_path / "certs"
    subprocess.run(
        [str(checkout / "scripts/make_tls_cert.sh"), "meetings.example.org", str(certs)],
        capture_output=True,
        check=True,
    )
    key = certs / "privkey.pem"
    assert key.stat().st_mode & 0o777 == 0o640
    os.chown(key, 1000, 1000)  # as if a regular user (uid 1000) had made it
    argv = [
        "docker", "run", "--rm", *_as_prod_runs_nginx(checkout),
        "-e", "PUBLIC_HOSTNAME=meetings.example.org", "-e", "MAX_UPLOAD_MB=50",
        "-v", f"{checkout / 'infra/nginx/templates'}:/etc/nginx/templates:ro",
        "-v", f"{certs}:/etc/nginx/certs:ro",
    ]  # fmt: skip
    proc = run(*argv, "--group-add", "1000", image, "nginx", "-t", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test is successful" in proc.stderr
    refused = run(*argv, image, "nginx", "-t", timeout=120)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stderr
