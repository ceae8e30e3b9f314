import stat

import pytest

from ops import env as env_files
from ops.env import file as env_file
from ops.env import schema
from ops.environment import Environment
from ops.errors import OpsError


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_setup_writes_every_key_with_generated_secrets_and_mode_0600(scratch_root):
    report = env_files.setup(Environment.parse("staging"))

    path = scratch_root / ".env.staging"
    assert report.created and report.path == path
    assert _mode(path) == 0o600
    values = env_file.parse(path)
    assert list(values) == schema.all_keys()
    assert values["APP_ENV"] == "staging"
    assert values["BACKEND_PORT"] == "8100"  # staging's ports do not collide with dev's
    secrets = [values[k] for k in schema.secret_keys()]
    assert len(set(secrets)) == len(secrets) and all(len(s) >= 40 for s in secrets)
    assert env_files.check(Environment.parse("staging")) == []


def test_setup_never_overwrites_without_force(scratch_root):
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    text = path.read_text().replace("LOG_LEVEL=INFO", "LOG_LEVEL=DEBUG")
    path.write_text(text.replace("MAX_UPLOAD_MB=200\n", "") + "MY_OWN_KEY=keep me\n")
    token = env_file.parse(path)["API_TOKEN"]

    report = env_files.setup(Environment.parse("dev"))
    values = env_file.parse(path)
    assert report.added == ["MAX_UPLOAD_MB"]
    assert values["LOG_LEVEL"] == "DEBUG" and values["API_TOKEN"] == token
    assert values["MY_OWN_KEY"] == "keep me", "unknown keys are kept, not dropped"

    forced = env_files.setup(Environment.parse("dev"), force=True)
    values = env_file.parse(path)
    assert "API_TOKEN" in forced.replaced and values["API_TOKEN"] != token
    assert values["LOG_LEVEL"] == "INFO"


def test_interpolation_builds_urls_from_the_parts(scratch_root):
    env_files.setup(Environment.parse("dev"))
    values = Environment.parse("dev").values()
    assert values["DATABASE_URL"] == (
        f"postgresql+psycopg://mi_app:{values['POSTGRES_APP_PASSWORD']}@127.0.0.1:5433/meetings"
    )
    assert values["DATABASE_OWNER_URL"] == (
        f"postgresql+psycopg://mi_owner:{values['POSTGRES_OWNER_PASSWORD']}@127.0.0.1:5433/meetings"
    )
    assert values["WHISPER_URL"] == "127.0.0.1:50051"


def test_an_older_release_s_superuser_database_url_is_updated_and_refused(scratch_root):
    """Before the app role, DATABASE_URL connected as POSTGRES_USER, the superuser."""
    env = Environment.parse("staging")
    env_files.setup(env)
    path = env.env_file
    former = next(iter(schema.FORMER_DEFAULTS["DATABASE_URL"]))
    text = path.read_text()
    current = next(line for line in text.splitlines() if line.startswith("DATABASE_URL="))
    path.write_text(text.replace(current, f"DATABASE_URL={former}"))

    problems = env_files.check(env, probe=False)
    assert any(
        p.key == "DATABASE_URL" and "connects as mi (POSTGRES_USER)" in p.message for p in problems
    ), problems

    report = env_files.setup(env)
    assert report.updated == ["DATABASE_URL"]
    assert env.values()["DATABASE_URL"].startswith("postgresql+psycopg://mi_app:")
    assert env_files.check(env, probe=False) == []


def test_a_hand_written_database_url_as_the_owner_is_refused(scratch_root):
    env = Environment.parse("dev")
    env_files.setup(env)
    text = env.env_file.read_text()
    current = next(line for line in text.splitlines() if line.startswith("DATABASE_URL="))
    env.env_file.write_text(
        text.replace(current, "DATABASE_URL=postgresql://mi_owner:pw@db.example:5432/meetings")
    )
    problems = env_files.check(env, probe=False)
    assert [p.key for p in problems] == ["DATABASE_URL"]
    assert "POSTGRES_APP_USER" in problems[0].message


def test_a_malformed_line_is_an_error_with_its_number(scratch_root):
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    lines = path.read_text().splitlines()
    lines.insert(4, "this line has no equals sign")
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(OpsError, match=r"\.env\.dev line 5: not KEY=VALUE"):
        Environment.parse("dev").values()
    problems = [str(p) for p in env_files.check(Environment.parse("dev"))]
    assert "line 5: not KEY=VALUE: 'this line has no equals sign'" in problems


def test_check_reports_unknown_missing_and_invalid_keys(scratch_root):
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    text = path.read_text()
    text = text.replace("BACKEND_PORT=8000", "BACKEND_PORT=99999")
    text = text.replace("LLM_ENGINE=auto", "LLM_ENGINE=gpt")
    text = text.replace("REDIS_PORT=6380\n", "")
    path.write_text(text + "BACKEND_PROT=8000\n")

    problems = {p.key: p for p in env_files.check(Environment.parse("dev"))}
    assert "less than or equal to 65535" in problems["BACKEND_PORT"].message
    assert problems["BACKEND_PORT"].line is not None
    assert "'auto', 'local', 'openai', 'ollama' or 'extractive'" in problems["LLM_ENGINE"].message
    assert problems["BACKEND_PROT"].message.startswith("unknown key BACKEND_PROT")
    missing = [p for p in env_files.check(Environment.parse("dev")) if p.key is None]
    assert any("REDIS_PORT" in p.message for p in missing)


@pytest.mark.parametrize(
    ("value", "expected"), [("change-me", "placeholder"), ("short", "weak"), ("a" * 40, "weak")]
)
def test_staging_and_prod_refuse_placeholder_and_weak_secrets(scratch_root, value, expected):
    env_files.setup(Environment.parse("prod"))
    path = scratch_root / ".env.prod"
    values = env_file.parse(path)
    path.write_text(path.read_text().replace(values["API_TOKEN"], value))

    problems = {p.key: p.message for p in env_files.check(Environment.parse("prod"))}
    assert expected in problems["API_TOKEN"]


def test_dev_accepts_simple_secrets_but_prod_refuses_a_world_readable_file(scratch_root):
    env_files.setup(Environment.parse("dev"))
    dev = scratch_root / ".env.dev"
    values = env_file.parse(dev)
    dev.write_text(dev.read_text().replace(values["API_TOKEN"], "dev-token"))
    assert env_files.check(Environment.parse("dev")) == []

    env_files.setup(Environment.parse("prod"))
    prod = scratch_root / ".env.prod"
    prod.chmod(0o644)
    assert any("chmod 600" in p.message for p in env_files.check(Environment.parse("prod")))


def test_missing_file_names_the_command_that_creates_it(scratch_root):
    with pytest.raises(OpsError) as info:
        env_files.check(Environment.parse("staging"))
    assert "inv env.setup --env staging" in str(info.value)


def test_service_tuning_keys_are_accepted_and_validated_by_the_service_schema(scratch_root):
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    path.write_text(path.read_text() + "WORKER_MAX_DELIVERIES=5\nWHISPER_WORKERS=4\n")
    assert env_files.check(Environment.parse("dev")) == []

    path.write_text(path.read_text() + "BACKEND_WORKERS=many\n")
    problems = {p.key: p for p in env_files.check(Environment.parse("dev"))}
    assert set(problems) == {"BACKEND_WORKERS"}
    assert "valid integer" in problems["BACKEND_WORKERS"].message


def test_env_example_documents_every_key_including_tuning_ones():
    text = schema.render_example()
    for key in schema.all_keys():
        assert f"\n{key}=" in text
    for key in schema.tuning_keys():
        assert f"\n# {key}=" in text
    assert "change-me" in text and "API_TOKEN=change-me" in text


def test_prepare_completes_an_older_dev_file_but_never_staging(scratch_root):
    env_files.setup(Environment.parse("dev"))
    path = scratch_root / ".env.dev"
    token = env_file.parse(path)["API_TOKEN"]
    path.write_text(path.read_text().replace("\nGRAFANA_ADMIN_PASSWORD=", "\nX_REMOVED="))
    path.write_text(
        "\n".join(x for x in path.read_text().splitlines() if not x.startswith("X_REMOVED=")) + "\n"
    )

    values = env_files.prepare(Environment.parse("dev"))
    assert values["API_TOKEN"] == token
    assert len(values["GRAFANA_ADMIN_PASSWORD"]) >= 40

    env_files.setup(Environment.parse("staging"))
    staging = scratch_root / ".env.staging"
    staging.write_text(
        "\n".join(x for x in staging.read_text().splitlines() if not x.startswith("GRAFANA_"))
        + "\n"
    )
    with pytest.raises(OpsError, match="missing keys: GRAFANA_ADMIN_PASSWORD"):
        env_files.prepare(Environment.parse("staging"))
