"""The offline container checks (scripts/infra_check.py): the repository passes them, and each
rule fails a broken copy of the files with a message naming the file and the rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every test here except the .dockerignore matcher runs the real validators.
needs_validators = pytest.mark.usefixtures("validators")
BASE = "infra/compose/compose.yaml"
DEV = "infra/compose/compose.dev.yaml"
STAGING = "infra/compose/compose.staging.yaml"
PROD = "infra/compose/compose.prod.yaml"
CHECKER = [sys.executable, str(ROOT / "scripts" / "infra_check.py")]


def _named(violations, file: str, rule: str) -> list[str]:
    return [str(v) for v in violations if v.file == file and v.rule == rule]


# --- the repository as committed --------------------------------------------------------------


@needs_validators
@pytest.mark.parametrize("check", ["compose-spec", "hadolint", "dockerfiles", "dockerignore"])
def test_the_repository_passes(infra_check, check):
    violations = infra_check.CHECKS[check](ROOT)
    assert violations == [], "\n".join(map(str, violations))


@needs_validators
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_each_environment_merges_and_passes_the_policy(infra_check, env):
    violations = infra_check.check_environments(ROOT, [env])
    assert violations == [], "\n".join(map(str, violations))


@needs_validators
def test_the_merged_prod_config_is_what_the_policy_expects(infra_check, tmp_path):
    """Guards the checker's premises: it sees every profile, and prod really is shaped so."""
    values = infra_check.throwaway_env("prod")
    config = infra_check.merged_config(
        ROOT, "prod", infra_check.write_env_file("prod", values, tmp_path)
    )
    services = config["services"]
    assert {"nginx", "ollama", "prometheus", "grafana", "whisper-cuda"} <= set(services)
    assert [name for name, s in services.items() if s.get("ports")] == ["nginx"]
    assert infra_check.one_shot_services(config) == {"migrate"}
    backend = services["backend"]["environment"]
    assert backend["API_TOKEN"] == values["API_TOKEN"]
    assert backend["DATABASE_URL"] == (
        f"postgresql+psycopg://mi_app:{values['POSTGRES_APP_PASSWORD']}@postgres:5432/meetings"
    )
    # Migrations run as the owner role; only postgres itself knows the superuser's password.
    assert services["migrate"]["environment"]["DATABASE_URL"] == (
        f"postgresql+psycopg://mi_owner:{values['POSTGRES_OWNER_PASSWORD']}@postgres:5432/meetings"
    )
    holders = [
        name
        for name, service in services.items()
        if values["POSTGRES_PASSWORD"] in str(service.get("environment", {}))
    ]
    assert holders == ["postgres"]
    assert backend["REDIS_URL"] == f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0"
    assert backend["WHISPER_URL"] == "whisper-cpu:50051"
    assert services["worker"]["deploy"]["replicas"] == 2


@needs_validators
def test_dev_publishes_the_env_files_ports_on_loopback(infra_check, tmp_path):
    values = infra_check.throwaway_env("dev")
    values["BACKEND_PORT"] = "18123"
    config = infra_check.merged_config(
        ROOT, "dev", infra_check.write_env_file("dev", values, tmp_path)
    )
    (port,) = config["services"]["backend"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "18123", 8000)
    assert config["services"]["backend"]["build"]["target"] == "development"


@needs_validators
def test_cuda_routes_the_pipeline_to_the_gpu_whisper(infra_check, tmp_path):
    values = {**infra_check.throwaway_env("staging"), "WHISPER_DEVICE": "cuda"}
    config = infra_check.merged_config(
        ROOT, "staging", infra_check.write_env_file("staging", values, tmp_path)
    )
    assert config["services"]["worker"]["environment"]["WHISPER_URL"] == "whisper-cuda:50051"
    assert config["services"]["whisper-cuda"]["build"]["target"] == "gpu"


# --- the three acceptance cases: broken copy -> failure naming file and rule ------------------


def test_an_unknown_compose_key_fails_naming_file_and_rule(infra_check, repo_copy, mutate):
    mutate(
        repo_copy,
        BASE,
        "  llm:\n    image: ${IMAGE_PREFIX:-mi}/llm:${IMAGE_TAG:-local}\n",
        "  llm:\n    image: ${IMAGE_PREFIX:-mi}/llm:${IMAGE_TAG:-local}\n    colour: blue\n",
    )
    found = _named(infra_check.check_schema(repo_copy), BASE, "compose-spec")
    assert found and "'colour' was unexpected" in found[0]
    assert found[0].startswith(f"{BASE}: [compose-spec]")


def test_a_latest_base_image_fails_naming_file_and_rule(infra_check, repo_copy, mutate):
    dockerfile = "services/backend/Dockerfile"
    mutate(repo_copy, dockerfile, "FROM ${PYTHON_IMAGE} AS runtime", "FROM x:latest AS runtime")

    policy = _named(infra_check.check_dockerfiles(repo_copy), dockerfile, "from-pinned")
    assert policy and "FROM x:latest" in policy[0]
    hadolint = _named(infra_check.check_hadolint(repo_copy), dockerfile, "hadolint DL3007")
    assert hadolint and "latest" in hadolint[0]


def test_a_prod_overlay_publishing_postgres_fails_naming_file_and_rule(
    infra_check, repo_copy, mutate
):
    mutate(
        repo_copy,
        PROD,
        "  postgres:\n    restart: unless-stopped\n",
        '  postgres:\n    ports: ["5432:5432"]\n    restart: unless-stopped\n',
    )
    found = _named(
        infra_check.check_environments(repo_copy, ["prod"]), PROD, "prod-publishes-only-nginx"
    )
    assert found == [
        f"{PROD}: [prod-publishes-only-nginx] prod: postgres publishes 5432: "
        "in prod only nginx may publish ports"
    ]


@pytest.mark.parametrize(
    ("relpath", "old", "new", "only", "expected"),
    [
        (
            BASE,
            "    image: ${IMAGE_PREFIX:-mi}/llm:${IMAGE_TAG:-local}\n",
            "    image: ${IMAGE_PREFIX:-mi}/llm:${IMAGE_TAG:-local}\n    colour: blue\n",
            "compose-spec",
            f"{BASE}: [compose-spec]",
        ),
        (
            "services/backend/Dockerfile",
            "FROM ${PYTHON_IMAGE} AS runtime",
            "FROM x:latest AS runtime",
            "dockerfiles",
            "services/backend/Dockerfile: [from-pinned] line ",
        ),
        (
            PROD,
            "  postgres:\n    restart: unless-stopped\n",
            '  postgres:\n    ports: ["5432:5432"]\n    restart: unless-stopped\n',
            "environments",
            f"{PROD}: [prod-publishes-only-nginx] prod: postgres publishes 5432",
        ),
    ],
    ids=["unknown-key", "from-latest", "prod-publishes-postgres"],
)
def test_the_nox_command_fails_on_each_acceptance_case(
    repo_copy, mutate, relpath, old, new, only, expected
):
    mutate(repo_copy, relpath, old, new)
    proc = subprocess.run(
        [*CHECKER, "--root", str(repo_copy), "--only", only],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert expected in proc.stdout
    assert ("FROM x:latest" in proc.stdout) == (only == "dockerfiles")


# --- every other rule bites too ---------------------------------------------------------------


def _env_check(infra_check, root, env):
    return infra_check.check_environments(root, [env])


COMPOSE_BREAKAGES = [
    (
        BASE,
        'test: ["CMD", "python", "/app/scripts/healthcheck.py", "http", '
        '"http://127.0.0.1:8001/health"]',
        'test: ["NONE"]',
        "dev",
        BASE,
        "healthcheck",
    ),
    (
        BASE,
        '"${API_TOKEN:?API_TOKEN is not set: run `uv run inv env.setup --env <env>`}"',
        '"${API_TOKEN:-insecure-default-token}"',
        "staging",
        BASE,
        "required-secrets",
    ),
    (
        BASE,
        "      API_TOKEN: *api-token\n",
        "      API_TOKEN: *api-token\n      BACKUP_KEY: ${BACKUP_KEY:?the backup key}\n",
        "dev",
        BASE,
        "required-secrets",
    ),
    (
        BASE,
        'LLM_URL: "http://llm:8001"',
        'LLM_URL: "http://127.0.0.1:8001"',
        "dev",
        BASE,
        "container-addresses",
    ),
    (
        BASE,
        "      dockerfile: services/llm/Dockerfile\n      target: runtime",
        "      dockerfile: services/llm/Dockerfile\n      target: runtme",
        "prod",
        BASE,
        "build-target",
    ),
    # Third-party images are variables (air-gapped stand-ins); the default is what is judged.
    (
        BASE,
        "image: ${REDIS_IMAGE:-redis:7.4-alpine}",
        "image: ${REDIS_IMAGE:-redis:latest}",
        "prod",
        BASE,
        "image-tag",
    ),
    (
        PROD,
        "image: ${NGINX_IMAGE:-nginx:1.28-alpine}",
        "image: nginx:1.28-alpine",
        "prod",
        PROD,
        "image-variable",
    ),
    (
        BASE,
        "    depends_on:\n      migrate:\n        condition: service_completed_successfully",
        "    depends_on:\n      migrate:\n        condition: service_started",
        "dev",
        BASE,
        "migrate-first",
    ),
    (
        DEV,
        '"127.0.0.1:${BACKEND_PORT:?',
        '"${BACKEND_PORT:?',
        "dev",
        DEV,
        "loopback-ports",
    ),
    (
        DEV,
        '"127.0.0.1:${LLM_PORT:?LLM_PORT is not set in the env file}:8001"',
        '"127.0.0.1:18001:8001"',
        "dev",
        DEV,
        "env-ports",
    ),
    (
        STAGING,
        "  llm:\n    <<: *hardened\n    restart: unless-stopped\n    logging: *logging\n",
        "  llm:\n    <<: *hardened\n    restart: unless-stopped\n",
        "staging",
        STAGING,  # nobody writes `logging` for llm now: the overlay is where it belongs
        "log-rotation",
    ),
    (
        PROD,
        "  backend:\n    <<: *hardened\n",
        "  backend:\n    <<: *hardened\n    read_only: false\n",
        "prod",
        PROD,
        "prod-read-only",
    ),
    (
        PROD,
        '        limits: {cpus: "1", memory: 768m}\n'
        '        reservations: {cpus: "0.25", memory: 128m}',
        '        reservations: {cpus: "0.25", memory: 128m}',
        "prod",
        PROD,
        "prod-resource-limits",
    ),
    (
        PROD,
        "  worker:\n    <<: *hardened\n    restart: unless-stopped",
        '  worker:\n    <<: *hardened\n    restart: "no"',
        "prod",
        PROD,
        "prod-restart-policy",
    ),
    (
        BASE,
        "    stop_grace_period: 1920s",
        "    stop_grace_period: 60s",
        "dev",
        BASE,
        "compose-worker-grace",
    ),
]


@pytest.mark.parametrize(
    ("relpath", "old", "new", "env", "file", "rule"),
    COMPOSE_BREAKAGES,
    ids=[row[-1] for row in COMPOSE_BREAKAGES],
)
def test_each_compose_rule_fails_a_broken_copy(
    infra_check, repo_copy, mutate, relpath, old, new, env, file, rule
):
    mutate(repo_copy, relpath, old, new)
    found = _named(_env_check(infra_check, repo_copy, env), file, rule)
    assert found, f"expected {file}: [{rule}] in {_env_check(infra_check, repo_copy, env)}"


@pytest.mark.parametrize(
    ("relpath", "old", "new", "rule"),
    [
        (
            "services/llm/Dockerfile",
            "USER 10001:10001\nEXPOSE 8001\nHEALTHCHECK --interval=15s",
            "USER root\nEXPOSE 8001\nHEALTHCHECK --interval=15s",
            "non-root-user",
        ),
        (
            "services/llm/Dockerfile",
            "HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \\\n"
            '    CMD ["python", "/app/scripts/healthcheck.py", "http", '
            '"http://127.0.0.1:${LLM_PORT}/health"]\nCMD ["python", "-m", "llm_service"]',
            'CMD ["python", "-m", "llm_service"]',
            "image-healthcheck",
        ),
        (
            "services/backend/Dockerfile",
            "COPY --from=builder /opt/venv /opt/venv\n",
            "COPY --from=builder /opt/venv /opt/venv\nCOPY --from=uv /uv /bin/uv\n",
            "no-build-tools",
        ),
        (
            "services/worker/Dockerfile",
            "COPY libs/ops/pyproject.toml /libs/ops/\n",
            "",
            "workspace-manifests",
        ),
        (
            "services/llm/Dockerfile",
            "uv sync --locked --no-install-workspace --no-editable",
            "uv sync --locked --no-editable",
            "uv-workspace-layers",
        ),
        (
            "services/whisper/Dockerfile",
            "ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04",
            "ARG CUDA_IMAGE",
            "from-pinned",
        ),
    ],
)
def test_each_dockerfile_rule_fails_a_broken_copy(
    infra_check, repo_copy, mutate, relpath, old, new, rule
):
    mutate(repo_copy, relpath, old, new)
    found = _named(infra_check.check_dockerfiles(repo_copy), relpath, rule)
    assert found, f"expected {relpath}: [{rule}] in {infra_check.check_dockerfiles(repo_copy)}"


def test_a_service_without_dockerfile_is_named(infra_check, repo_copy):
    (repo_copy / "services/llm/Dockerfile").unlink()
    found = infra_check.check_dockerfiles(repo_copy)
    assert _named(found, "services/llm", "dockerfile-per-service")


def test_dockerignore_must_keep_env_files_out(infra_check, repo_copy, mutate):
    mutate(repo_copy, ".dockerignore", ".env\n.env.*\n**/.env\n**/.env.*\n", "")
    found = _named(infra_check.check_dockerignore(repo_copy), ".dockerignore", "dockerignore")
    assert any(".env.prod would be sent" in line for line in found)


@pytest.mark.parametrize(
    ("rules", "path", "ignored"),
    [
        ([".env.*"], ".env.prod", True),
        ([".env.*"], "services/x/.env.prod", False),
        (["**/.env.*"], "services/x/.env.prod", True),
        ([".data/"], ".data/dev/postgres/base", True),
        (["**/tests/"], "services/backend/tests/test_api.py", True),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "NOTES.md", True),
        (["infra/"], "infrastructure.txt", False),
    ],
)
def test_dockerignore_matching_follows_dockers_rules(infra_check, rules, path, ignored):
    assert infra_check.dockerignored(rules, path) is ignored


@needs_validators
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_prometheus_has_no_lifecycle_endpoint(infra_check, env, tmp_path):
    """--web.enable-lifecycle lets anyone who reaches Prometheus stop it (POST /-/quit)."""
    values = infra_check.throwaway_env(env)
    config = infra_check.merged_config(ROOT, env, infra_check.write_env_file(env, values, tmp_path))
    command = config["services"]["prometheus"]["command"]
    assert any(arg.startswith("--config.file") for arg in command)
    assert "--web.enable-lifecycle" not in command


@needs_validators
def test_prod_trusts_forwarded_addresses_from_its_proxy_s_network_only(infra_check, tmp_path):
    values = infra_check.throwaway_env("prod")
    config = infra_check.merged_config(
        ROOT, "prod", infra_check.write_env_file("prod", values, tmp_path)
    )
    services = config["services"]
    (subnet,) = [pool["subnet"] for pool in config["networks"]["edge"]["ipam"]["config"]]
    trusted = services["backend"]["environment"]["FORWARDED_ALLOW_IPS"]
    assert trusted == subnet and "*" not in trusted
    assert set(services["nginx"]["networks"]) == {"edge"}
    assert "edge" in services["backend"]["networks"]
    # Only nginx and what it proxies to are on that network.
    on_edge = {name for name, s in services.items() if "edge" in (s.get("networks") or {})}
    assert on_edge == {"nginx", "backend", "grafana"}
    # nginx reads its key by the key's group, not with CAP_DAC_OVERRIDE.
    assert "DAC_OVERRIDE" not in services["nginx"]["cap_add"]
    assert services["nginx"]["cap_drop"] == ["ALL"]
    assert services["nginx"]["group_add"]
