"""`inv env.check`, `inv up` and `inv health` with MEDIA_STORE=s3 name what is wrong with the
bucket and what to do, against real S3-protocol servers on loopback (rclone's `serve s3`;
moto's for a key that may read but not write)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from common.health import Check, run_checks
from mi_testing.objectstore import MediaUnderTest, MotoS3
from ops import env as env_files
from ops import health, media
from ops.environment import Environment
from ops.errors import OpsError
from ops.runtimes.compose import ComposeRuntime
from ops.runtimes.local import _check_media


def configure(root: Path, **values: str) -> Environment:
    env = Environment.parse("dev")
    env_files.setup(env)
    path = root / ".env.dev"
    lines = []
    for line in path.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values else line)
    path.write_text("\n".join(lines) + "\n")
    return env


def bucket_values(s3: MediaUnderTest, **changes: str) -> dict[str, str]:
    return {
        "MEDIA_STORE": "s3",
        "S3_ENDPOINT_URL": s3.fields["s3_endpoint_url"],
        "S3_BUCKET": s3.fields["s3_bucket"],
        "S3_ACCESS_KEY_ID": s3.fields["s3_access_key_id"],
        "S3_SECRET_ACCESS_KEY": s3.fields["s3_secret_access_key"],
        **changes,
    }


CASES = [
    ({}, None),
    ({"S3_SECRET_ACCESS_KEY": "not-the-secret-0123456789"}, "S3_SECRET_ACCESS_KEY is not"),
    ({"S3_ACCESS_KEY_ID": "nobody-has-this-key"}, "does not know the access key"),
    ({"S3_BUCKET": "no-such-bucket"}, "the bucket 'no-such-bucket' does not exist"),
    ({"S3_ENDPOINT_URL": "http://127.0.0.1:9"}, "does not answer"),
]
IDS = ["good", "wrong-secret", "unknown-key", "missing-bucket", "unreachable"]


@pytest.mark.parametrize(("changes", "cause"), CASES, ids=IDS)
def test_env_check_tries_the_bucket(scratch_root, s3_media, changes, cause):
    env = configure(scratch_root, **bucket_values(s3_media, **changes))
    problems = [str(p) for p in env_files.check(env)]
    if cause is None:
        assert problems == []
    else:
        assert len(problems) == 1 and cause in problems[0], problems
        assert "then run the command again" in problems[0]
        # Without the probe (what `inv k8s.*` uses) the file itself is fine.
        assert env_files.check(env, probe=False) == []


def test_env_check_names_a_key_that_may_not_write(scratch_root, read_only_s3: MotoS3):
    key, secret = read_only_s3.reader
    env = configure(
        scratch_root,
        MEDIA_STORE="s3",
        S3_ENDPOINT_URL=read_only_s3.endpoint,
        S3_BUCKET=read_only_s3.bucket,
        S3_ACCESS_KEY_ID=key,
        S3_SECRET_ACCESS_KEY=secret,
    )
    (problem,) = [str(p) for p in env_files.check(env)]
    assert "denies this key permission to write" in problem and "s3:PutObject" in problem


@pytest.mark.parametrize(("changes", "cause"), CASES, ids=IDS)
def test_health_reports_the_bucket(s3_media, changes, cause):
    values = bucket_values(s3_media, **changes)
    report = asyncio.run(run_checks([Check("media", health.media_probe(values), timeout=10)]))
    (result,) = report.results
    assert result.ok == (cause is None), result.detail
    if cause:
        assert cause in result.detail
    else:
        assert s3_media.fields["s3_bucket"] in result.detail


def test_up_refuses_an_unusable_bucket_before_starting_anything(scratch_root, s3_media):
    values = bucket_values(s3_media, S3_BUCKET="no-such-bucket")
    with pytest.raises(OpsError, match="the bucket 'no-such-bucket' does not exist") as info:
        _check_media(Environment.parse("dev"), values)
    assert "S3_BUCKET" in info.value.fix
    _check_media(Environment.parse("dev"), bucket_values(s3_media))  # a good one passes


def test_the_local_runtime_runs_no_object_store_of_its_own(scratch_root):
    with pytest.raises(OpsError, match="only the compose runtime runs") as info:
        _check_media(Environment.parse("dev"), {"MEDIA_STORE": "s3", "S3_ENDPOINT_URL": ""})
    assert "S3_ENDPOINT_URL" in info.value.fix


def test_compose_starts_its_own_store_only_when_the_recordings_go_there(scratch_root):
    runtime = ComposeRuntime(Environment.parse("dev"), profiles=("monitoring",))
    own = {"MEDIA_STORE": "s3", "S3_ENDPOINT_URL": ""}
    assert runtime._profiles(own) == ("monitoring", "objectstore")
    assert runtime._profiles({**own, "S3_ENDPOINT_URL": "https://s3.example"}) == ("monitoring",)
    assert runtime._profiles({"MEDIA_STORE": "local"}) == ("monitoring",)
    # The host reaches the stack's own store where compose publishes it.
    values = {**own, "S3_BUCKET": "mi-media", "S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": "s"}
    settings = media.settings_for({**values, "OBJECTSTORE_PORT": "9010"}, root=scratch_root)
    assert settings.s3_endpoint_url == "http://127.0.0.1:9010"
