"""The Kubernetes manifests (infra/k8s): every overlay renders and passes, each rule fails a
broken copy naming the file and the rule, and `inv k8s.*` refuse what cannot work."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from common.environments import default_ports
from ops import k8s
from ops.environment import Environment
from ops.errors import OpsError

ROOT = Path(__file__).resolve().parents[2]
needs_validators = pytest.mark.usefixtures("validators")
BASE = "infra/k8s/base"
CHECKER = [sys.executable, str(ROOT / "scripts" / "infra_check.py")]


def _rules(violations, file: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in violations:
        if v.file == file:
            found.setdefault(v.rule, []).append(str(v))
    return found


@needs_validators
def test_every_overlay_renders_validates_and_passes_the_policy(infra_check):
    assert infra_check.k8s_overlays(ROOT) == ["dev", "prod", "staging"]
    violations = infra_check.check_kubernetes(ROOT)
    assert violations == [], "\n".join(map(str, violations))


@needs_validators
def test_the_rendered_prod_overlay_is_shaped_as_documented(infra_check):
    objects = infra_check.render_k8s(ROOT, "prod")
    kinds = {(o["kind"], o["metadata"]["name"].split("-")[0]) for o in objects}
    assert {
        ("Deployment", "backend"),
        ("Deployment", "worker"),
        ("Deployment", "whisper"),
        ("Deployment", "llm"),
        ("Job", "migrate"),
        ("CronJob", "backup"),
        ("HorizontalPodAutoscaler", "backend"),
        ("ScaledObject", "worker"),
    } <= kinds
    # prod reaches external data services: none runs in the cluster.
    assert not [o for o in objects if o["kind"] == "StatefulSet"]
    secret = next(
        o
        for o in objects
        if o["kind"] == "Secret" and o["metadata"]["name"].startswith("mi-secrets")
    )
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert "postgres.db.example.internal" in data["DATABASE_URL"]
    assert data["S3_ENDPOINT_URL"] == "https://s3.eu-west-1.amazonaws.com"
    port = default_ports("prod")["REDIS_PORT"]
    assert data["REDIS_ADDRESS"] == f"redis.cache.example.internal:{port}"
    # The migration Job is the release's own, and new backends wait for its schema.
    job = next(o for o in objects if o["kind"] == "Job")
    assert job["metadata"]["name"] == "migrate-1-0-0"
    backend = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "backend"
    )
    assert backend["spec"]["template"]["spec"]["initContainers"][0]["name"] == "wait-for-schema"
    assert {c["image"] for c in backend["spec"]["template"]["spec"]["containers"]} == {
        "registry.example/mi/backend:1.0.0"
    }


@needs_validators
def test_dev_runs_its_data_services_in_the_cluster(infra_check):
    objects = infra_check.render_k8s(ROOT, "dev")
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "StatefulSet"} == {
        "postgres",
        "redis",
        "objectstore",
    }
    secret = next(
        o
        for o in objects
        if o["kind"] == "Secret" and o["metadata"]["name"].startswith("mi-secrets")
    )
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert "@postgres:5432/" in data["DATABASE_URL"]
    assert data["S3_ENDPOINT_URL"] == "http://objectstore:9000"


def _pod_specs(objects):
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        template = spec.get("template", {}).get("spec")
        if template:
            yield o["metadata"]["name"], template


def _secrets_used(pod) -> set[str]:
    names = set()
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        names |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
    return names


@needs_validators
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_migrations_backup_and_postgres_get_the_owner_s_credentials(infra_check, env):
    objects = infra_check.render_k8s(ROOT, env)
    secrets = {
        o["metadata"]["name"].rsplit("-", 1)[0]: {
            k: base64.b64decode(v).decode() for k, v in o["data"].items()
        }
        for o in objects
        if o["kind"] == "Secret"
    }
    assert {"DATABASE_OWNER_URL", "BACKUP_KEY"} <= set(secrets["mi-db-secrets"])
    assert "mi_owner" not in "".join(secrets["mi-secrets"].values())
    assert not {
        "DATABASE_OWNER_URL",
        "POSTGRES_PASSWORD",
        "POSTGRES_OWNER_PASSWORD",
        "BACKUP_KEY",
    } & set(secrets["mi-secrets"])
    with_db = {
        name
        for name, pod in _pod_specs(objects)
        if any(s.startswith("mi-db-secrets") for s in _secrets_used(pod))
    }
    expected = {"backup", "postgres"} if env == "dev" else {"backup"}
    assert with_db - {n for n in with_db if n.startswith("migrate")} == expected
    assert any(n.startswith("migrate") for n in with_db)


# --- each rule bites a broken copy ------------------------------------------------------------

BREAKAGES = [
    # The three acceptance cases first.
    (
        f"{BASE}/llm.yaml",
        "            requests: {cpu: 250m, memory: 256Mi}\n"
        '            limits: {cpu: "1", memory: 768Mi}\n',
        "            requests: {cpu: 250m, memory: 256Mi}\n",
        "k8s-limits",
        "container llm has no CPU/memory limits",
    ),
    (
        f"{BASE}/backend.yaml",
        "        runAsNonRoot: true\n        runAsUser: 10001\n",
        "        runAsNonRoot: false\n        runAsUser: 0\n",
        "k8s-non-root",
        "runAsNonRoot: true and a non-zero runAsUser",
    ),
    (
        f"{BASE}/worker.yaml",
        "      terminationGracePeriodSeconds: 1920\n",
        "      terminationGracePeriodSeconds: 60\n",
        "k8s-worker-grace",
        "terminationGracePeriodSeconds 60 must exceed WORKER_TIME_LIMIT 1860",
    ),
    # Every other rule.
    (
        f"{BASE}/whisper.yaml",
        "          imagePullPolicy: IfNotPresent\n",
        "          imagePullPolicy: IfNotPresent\n          colour: blue\n",
        "k8s-schema",
        "'colour' was unexpected",
    ),
    (
        f"{BASE}/worker.yaml",
        "  cooldownPeriod: 300\n",
        "  cooldownPeriod: 300\n  coolDown: 300\n",
        "k8s-schema",
        "'coolDown' was unexpected",
    ),
    (
        f"{BASE}/llm.yaml",
        "          livenessProbe:\n            httpGet: {path: /health, port: http}\n"
        "            periodSeconds: 15\n",
        "          lifeProbe:\n            httpGet: {path: /health, port: http}\n"
        "            periodSeconds: 15\n",
        "k8s-probes",
        "container llm has no livenessProbe",
    ),
    (
        f"{BASE}/backend.yaml",
        "            readOnlyRootFilesystem: true\n            capabilities: {drop: [ALL]}\n"
        "          volumeMounts: &tmp-mount",
        "            readOnlyRootFilesystem: false\n            capabilities: {drop: [ALL]}\n"
        "          volumeMounts: &tmp-mount",
        "k8s-non-root",
        "container wait-for-schema has a writable root filesystem",
    ),
    (
        f"{BASE}/backup.yaml",
        "              image: mi/ops:local\n",
        "              image: busybox:latest\n",
        "k8s-image-pinned",
        "uses 'busybox:latest': pin a tag",
    ),
    (
        f"{BASE}/whisper.yaml",
        "  maxUnavailable: 1\n",
        "  minAvailable: 1\n",
        "k8s-pdb",
        "minAvailable blocks a drain at one replica",
    ),
    (
        f"{BASE}/backend.yaml",
        "      topologySpreadConstraints:\n        - maxSkew: 1\n"
        "          topologyKey: kubernetes.io/hostname\n"
        "          whenUnsatisfiable: ScheduleAnyway\n"
        "          labelSelector:\n            matchLabels: {app.kubernetes.io/name: backend}\n"
        "        - maxSkew: 1\n          topologyKey: topology.kubernetes.io/zone\n"
        "          whenUnsatisfiable: ScheduleAnyway\n          labelSelector:\n"
        "            matchLabels: {app.kubernetes.io/name: backend}\n",
        "",
        "k8s-spread",
        "replicated but not spread over nodes",
    ),
    (
        f"{BASE}/networkpolicies.yaml",
        "        - podSelector:\n            matchLabels: {app.kubernetes.io/name: worker}\n"
        "      ports:\n        - {port: 50051, protocol: TCP}\n",
        "        - namespaceSelector: {}\n      ports:\n        - {port: 50051, protocol: TCP}\n",
        "k8s-network",
        "whisper must admit only the worker",
    ),
]


@needs_validators
@pytest.mark.parametrize(
    ("relpath", "old", "new", "rule", "expected"),
    BREAKAGES,
    ids=[
        "no-limits",
        "root",
        "short-grace",
        "unknown-field",
        "keda-unknown-field",
        "no-liveness",
        "writable-root",
        "latest-image",
        "min-available",
        "no-spread",
        "whisper-open",
    ],
)
def test_each_rule_fails_a_broken_copy_naming_file_and_rule(
    infra_check, repo_copy, mutate, relpath, old, new, rule, expected
):
    mutate(repo_copy, relpath, old, new)
    violations = infra_check.check_kubernetes(repo_copy, ["prod"])
    if rule == "k8s-network":
        relpath = "infra/k8s/overlays/prod/kustomization.yaml"
    found = _rules(violations, relpath).get(rule, [])
    assert any(expected in line for line in found), "\n".join(map(str, violations))
    assert all(line.startswith(f"{relpath}: [{rule}] prod: ") for line in found)


@needs_validators
def test_a_backend_without_hpa_or_a_worker_without_keda_fails(infra_check, repo_copy, mutate):
    mutate(repo_copy, f"{BASE}/backend.yaml", "kind: HorizontalPodAutoscaler", "kind: Nothing")
    mutate(repo_copy, f"{BASE}/worker.yaml", "kind: ScaledObject", "kind: ScaledJob")
    violations = infra_check.check_kubernetes(repo_copy, ["staging"])
    rules = {v.rule for v in violations}
    assert {"k8s-render"} <= rules or {"k8s-autoscaling", "k8s-schema"} <= rules, violations


@needs_validators
def test_a_committed_secret_and_a_broken_overlay_fail(infra_check, repo_copy, mutate):
    (repo_copy / "infra/k8s/overlays/prod/leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\nstringData:\n  API_TOKEN: x\n"
    )
    mutate(
        repo_copy,
        "infra/k8s/overlays/prod/kustomization.yaml",
        "  - namespace.yaml\n",
        "  - namespace.yaml\n  - gone.yaml\n",
    )
    violations = infra_check.check_kubernetes(repo_copy, ["prod"])
    assert [v.rule for v in violations if v.file.endswith("leak.yaml")] == [
        "k8s-no-default-secrets"
    ]
    render = [str(v) for v in violations if v.rule == "k8s-render"]
    assert render and "gone.yaml" in render[0]


@needs_validators
@pytest.mark.parametrize("case", [0, 1, 2], ids=["no-limits", "root", "short-grace"])
def test_the_nox_command_fails_on_each_planted_fault(repo_copy, mutate, case):
    relpath, old, new, rule, expected = BREAKAGES[case]
    mutate(repo_copy, relpath, old, new)
    proc = subprocess.run(
        [*CHECKER, "--root", str(repo_copy), "--only", "kubernetes"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{relpath}: [{rule}]" in proc.stdout and expected in proc.stdout


# --- the tasks --------------------------------------------------------------------------------


def test_secrets_refuse_loopback_and_empty_external_urls(scratch_env):
    env, values = scratch_env("prod")
    with pytest.raises(OpsError, match=r"DATABASE_URL points at 127\.0\.0\.1") as info:
        k8s.secret_values(env, values)
    assert "POSTGRES_HOST" in info.value.fix
    values |= {"DATABASE_URL": "postgresql+psycopg://u:p@db.internal:5432/m"}
    with pytest.raises(OpsError, match=r"DATABASE_OWNER_URL points at 127\.0\.0\.1"):
        k8s.secret_values(env, values)
    values |= {"DATABASE_OWNER_URL": "postgresql+psycopg://o:p@db.internal:5432/m"}
    values |= {"REDIS_URL": "redis://:pw@redis.internal:6379/0"}
    with pytest.raises(OpsError, match="S3_ENDPOINT_URL is empty"):
        k8s.secret_values(env, values)
    values["S3_ENDPOINT_URL"] = "https://storage.googleapis.com"
    secret = k8s.secret_values(env, values)
    assert secret["REDIS_ADDRESS"] == "redis.internal:6379" and secret["REDIS_PASSWORD"] == "pw"


def test_secrets_file_is_private_and_never_tracked(scratch_env, scratch_root):
    env, _ = scratch_env("dev")
    (scratch_root / "infra/k8s/overlays/dev").mkdir(parents=True)
    path = k8s.write_secrets(env)
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "DATABASE_URL=postgresql+psycopg://mi_app:" in text
    assert "mi_owner:" not in text
    owner = path.with_name("db-secrets.env")
    assert owner.stat().st_mode & 0o777 == 0o600
    assert "DATABASE_OWNER_URL=postgresql+psycopg://mi_owner:" in owner.read_text()
    for name in ("secrets.env", "db-secrets.env"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", f"infra/k8s/overlays/prod/{name}"],
            cwd=ROOT,
            check=False,
        )
        assert ignored.returncode == 0, name


@pytest.fixture
def scratch_root(tmp_path, monkeypatch):
    from ops import project

    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.setattr(project, "root", lambda: root)
    return root


@pytest.fixture
def scratch_env(scratch_root):
    from ops import env as env_files
    from ops.env import file

    def make(name: str) -> tuple[Environment, dict[str, str]]:
        env = Environment.parse(name)
        env_files.setup(env)
        return env, file.interpolate(file.parse(env.env_file))

    return make
