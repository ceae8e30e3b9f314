"""Operations for the meeting-intelligence stack. `uv run inv --list` shows them all.

Every task only parses flags and calls into `libs/ops` (package `ops`), where the logic
lives: `ops/<namespace>` for each collection below (`ops.env`, `ops.db`, `ops.backup`,
`ops.models`; `ops.runtimes` for up/down/ps/logs/build). `--env` is parsed once into an
`ops.environment.Environment` that everything below receives. Imports of `ops` modules stay
inside task bodies so that `inv --list` starts fast. Failures raise `ops.errors.OpsError`, an
invoke `Exit`: a message and what to do, no traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, Context, Exit, task

if TYPE_CHECKING:
    from ops.environment import Environment

ENV_HELP = "Environment: dev, staging or prod."
JSON_HELP = "Print JSON instead of a table."


def _env(name: str) -> Environment:
    from ops.environment import Environment

    return Environment.parse(name)


# --- workstation ----------------------------------------------------------------------------


@task(help={"hooks": "Install the git pre-commit hook (default: yes)."})
def setup(c: Context, hooks: bool = True) -> None:
    """Install the locked environment and the git pre-commit hook."""
    from ops import workstation

    workstation.setup(c, hooks=hooks)


@task(help={"env": ENV_HELP + " Its ports are checked.", "json": JSON_HELP})
def doctor(c: Context, env: str = "dev", json: bool = False) -> None:
    """Check this machine: Python, uv, git, Docker, local binaries, free ports, disk."""
    from ops import console, doctor

    findings = doctor.run(_env(env))
    columns = ["check", "status", "detail", "fix"]
    rows = doctor.as_dicts(findings)
    console.report(f"doctor ({env})", columns, rows, json=json, status_key="status")
    failed = [f.check for f in findings if f.status == "fail"]
    if failed:
        raise Exit(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}", code=1)


# --- the stack ------------------------------------------------------------------------------

RUNTIME_HELP = "auto (compose when a Docker engine answers, else local), local or compose."


@task(
    help={
        "env": ENV_HELP,
        "runtime": RUNTIME_HELP,
        "timeout": "Seconds to wait for health.",
        "offline": "Fetch nothing: a missing whisper model is not pulled (pocketsphinx runs).",
        "monitoring": "Also run Flower and Prometheus (with the alert rules); compose: Grafana.",
    }
)
def up(
    c: Context,
    env: str = "dev",
    runtime: str = "auto",
    timeout: int = 120,
    offline: bool = False,
    monitoring: bool = False,
) -> None:
    """Start the whole stack for an environment (pulling a missing whisper model first) and wait
    until it is healthy."""
    from ops import runtimes

    selected = runtimes.select(runtime, _env(env))
    selected.up(timeout=timeout, offline=offline, monitoring=monitoring)


@task(
    help={
        "env": ENV_HELP,
        "runtime": RUNTIME_HELP,
        "volumes": "Also delete the environment's data (database, media, logs).",
        "yes": "Do not ask before deleting data.",
    }
)
def down(
    c: Context, env: str = "dev", runtime: str = "auto", volumes: bool = False, yes: bool = False
) -> None:
    """Stop the stack of an environment."""
    from ops import console, runtimes

    selected = runtimes.select(runtime, _env(env), announce=False)
    if volumes:
        console.confirm(f"delete every piece of {env}'s data under {selected.env.data_dir}?", yes)
    selected.down(volumes=volumes)


@task(help={"env": ENV_HELP, "runtime": RUNTIME_HELP, "json": JSON_HELP})
def ps(c: Context, env: str = "dev", runtime: str = "auto", json: bool = False) -> None:
    """List the stack's services with their state, pid/container and URL."""
    from dataclasses import asdict

    from ops import console, runtimes

    states = [asdict(s) for s in runtimes.select(runtime, _env(env), announce=False).ps()]
    columns = ["service", "state", "ident", "uptime", "url"]
    stopped = f"the {env} stack is not running (`inv up --env {env}` starts it)"
    console.report(f"{env} stack", columns, states, json=json, status_key="state", empty=stopped)


@task(
    help={
        "env": ENV_HELP,
        "service": "Only this service.",
        "runtime": RUNTIME_HELP,
        "follow": "Keep printing new lines (Ctrl-C stops).",
        "tail": "Lines to show per service.",
    }
)
def logs(
    c: Context,
    env: str = "dev",
    runtime: str = "auto",
    service: str = "",
    follow: bool = False,
    tail: int = 100,
) -> None:
    """Show the services' logs."""
    from ops import runtimes

    selected = runtimes.select(runtime, _env(env), announce=False)
    selected.logs(service=service or None, follow=follow, tail=tail)


@task(help={"env": ENV_HELP, "wait": "Retry for up to this many seconds.", "json": JSON_HELP})
def health(c: Context, env: str = "dev", wait: float = 0, json: bool = False) -> None:
    """Check every service and dependency in parallel; non-zero exit when one is down."""
    from ops import binaries, console
    from ops import health as checks

    values = _env(env).values()
    report = checks.run(values, wait=wait, ollama=binaries.ollama().path is not None)
    if json:
        console.print_json(report.as_dict())
    else:
        columns = ["check", "status", "latency", "detail"]
        console.print_table(f"{env} health", columns, checks.rows(report), status_key="status")
    if not report.ok:
        failed = [r.name for r in report.results if r.required and not r.ok]
        raise Exit(f"health: {', '.join(failed)} failing; see `inv logs --env {env}`", code=1)


@task(help={"env": ENV_HELP, "service": "Only this service's image."})
def build(c: Context, env: str = "dev", service: str = "") -> None:
    """Build the service images (compose runtime)."""
    from ops.runtimes.compose import ComposeRuntime

    ComposeRuntime(_env(env)).build(service or None)


# --- env: configuration files ---------------------------------------------------------------


@task(name="setup", help={"env": ENV_HELP, "force": "Replace existing values too."})
def env_setup(c: Context, env: str = "dev", force: bool = False) -> None:
    """Write .env.<env> from the settings schema, with generated secrets (mode 0600)."""
    from ops import env as env_files

    env_files.setup(_env(env), force=force).show()


@task(name="check", help={"env": ENV_HELP})
def env_check(c: Context, env: str = "dev") -> None:
    """Validate .env.<env>: missing or unknown keys, malformed lines, weak secrets."""
    from ops import console
    from ops import env as env_files

    environment = _env(env)
    problems = env_files.check(environment)
    name = environment.env_file.name
    if problems:
        listing = "\n  ".join(str(p) for p in problems)
        raise Exit(f"{name}: {len(problems)} problem(s)\n  {listing}", 1)
    console.say(f"{name}: ok")


@task(name="example", help={"check": "Only fail when .env.example is stale; write nothing."})
def env_example(c: Context, check: bool = False) -> None:
    """Regenerate .env.example from the settings schema."""
    from ops import console
    from ops import env as env_files

    path = env_files.write_example(check_only=check)
    if not check:
        console.say(f"wrote {path}")


# --- db: migrations -------------------------------------------------------------------------


@task(help={"env": ENV_HELP, "to": "Target revision.", "no_backup": "Skip the safety backup."})
def migrate(c: Context, env: str = "dev", to: str = "head", no_backup: bool = False) -> None:
    """Apply migrations (staging/prod take a verified backup first)."""
    from ops import console, db

    environment = _env(env)
    console.say(db.migrate(environment, to, backup=db.safety_backup(environment, skip=no_backup)))


@task(help={"message": "Revision message.", "env": ENV_HELP})
def revision(c: Context, message: str, env: str = "dev") -> None:
    """Autogenerate a migration from the models (the env's database must be at head)."""
    from ops import console, db

    path = db.revision(_env(env), message)
    console.say(f"wrote {path}\nreview it, then `inv db.migrate --env {env}`")


@task(
    help={
        "env": ENV_HELP,
        "to": "Target revision ('base' empties the schema, '-1' steps back one).",
        "no_backup": "Skip the safety backup (staging/prod).",
    }
)
def downgrade(c: Context, to: str, env: str = "dev", no_backup: bool = False) -> None:
    """Downgrade the database to a revision (staging/prod take a verified backup first)."""
    from ops import console, db

    environment = _env(env)
    backup = db.safety_backup(environment, skip=no_backup)
    console.say(db.downgrade(environment, to, backup=backup))


@task(help={"env": ENV_HELP})
def current(c: Context, env: str = "dev") -> None:
    """Show the database's current revision and the code's head."""
    from ops import console, db

    at, head = db.status(_env(env))
    state = "up to date" if at == head else f"behind: `inv db.migrate --env {env}`"
    console.say(f"{env}: at {at or 'no revision (empty)'}; head is {head} ({state})")


@task(name="check", help={"env": ENV_HELP})
def db_check(c: Context, env: str = "dev") -> None:
    """Fail when the models and the migrations disagree."""
    from ops import console, db

    console.say(db.check(_env(env)))


# --- backup: nothing lost, ever -------------------------------------------------------------


@task(help={"env": ENV_HELP, "keep": "Keep only the newest N backups (0: keep all)."})
def create(c: Context, env: str = "dev", keep: int = 0) -> None:
    """Back up the database and media into one verified archive under backups/<env>/."""
    from ops import backup, console

    created = backup.create(_env(env), keep=keep)
    console.say(f"backup: {created.path} ({created.seconds:.1f}s)")


@task(name="list", help={"env": ENV_HELP, "json": JSON_HELP})
def backup_list(c: Context, env: str = "dev", json: bool = False) -> None:
    """List backups with age, size, revision and verification."""
    from ops import backup, console

    environment = _env(env)
    rows = backup.list_backups(environment)
    columns = ["name", "age", "size", "revision", "verified"]
    none = f"no backups of {env} in {environment.backups_dir}; `inv backup --env {env}`"
    console.report(f"{env} backups", columns, rows, json=json, status_key="verified", empty=none)
    if rows and not json:
        console.say(f"in {environment.backups_dir}; --json shows more")


@task(
    help={
        "path": "Backup archive.",
        "drill": "Also restore it into a scratch database, compare, drop the scratch.",
        "env": "Whose key checks it and whose Postgres runs the drill (default: the backup's env).",
        "trust_unsigned": "Accept an archive this deployment did not sign (old or foreign).",
    }
)
def verify(
    c: Context, path: str, drill: bool = False, env: str = "", trust_unsigned: bool = False
) -> None:
    """Verify a backup's signature and checksums (and with --drill, that it restores)."""
    from ops import backup, console

    result = backup.verify(path, drill=drill, env=_env(env) if env else None, trust=trust_unsigned)
    if result.detail:
        console.say(result.detail)
    if not result.ok:
        problems = "\n  ".join(result.problems)
        raise Exit(f"{result.path.name} is NOT intact:\n  {problems}", code=1)


@task(
    help={
        "env": ENV_HELP,
        "from_": "Backup archive to restore.",
        "from_env": "Allow a backup of this other environment (refused by default).",
        "trust_unsigned": "Accept an archive this deployment did not sign (old or foreign).",
        "yes": "Do not ask.",
    }
)
def restore(
    c: Context,
    from_: str,
    env: str = "dev",
    from_env: str = "",
    trust_unsigned: bool = False,
    yes: bool = False,
) -> None:
    """Restore database and media from a verified backup (stops and restarts backend/worker)."""
    from ops import backup

    backup.restore(_env(env), from_, yes=yes, from_env=from_env or None, trust=trust_unsigned)


# --- models ---------------------------------------------------------------------------------


@task(
    help={
        "env": ENV_HELP,
        "offline": "Download nothing: verify what is here, say how to bring what is missing.",
        "replace": "Replace a model directory that holds something other than the locked model.",
        "timeout": "Give up after this many seconds in all (a rerun resumes the downloads).",
        "kind": "Only these kinds, comma-separated (whisper, llm, embeddings, ollama); a kind "
        "named here is pulled even when the env's engines do not use it.",
        "json": JSON_HELP,
    }
)
def pull(
    c: Context,
    env: str = "dev",
    offline: bool = False,
    replace: bool = False,
    timeout: int = 3600,
    kind: str = "",
    json: bool = False,
) -> None:
    """Fetch the locked whisper, LLM, embedding and Ollama models (resumable, verified against
    models.lock)."""
    from ops import models

    environment = _env(env)
    kinds = [k.strip() for k in kind.split(",") if k.strip()] or None
    with models.progress_bars() as bars:
        rows = models.pull(
            environment, offline=offline, replace=replace, timeout=timeout, bars=bars, kinds=kinds
        )
    models.show(rows, f"models ({env})", json=json)
    models.raise_for_failures(rows, environment)


@task(
    name="list",
    help={
        "env": ENV_HELP,
        "verify": "Hash the model files too (remembered until they change).",
        "json": JSON_HELP,
    },
)
def models_list(c: Context, env: str = "dev", verify: bool = False, json: bool = False) -> None:
    """Show the locked models and whether each is present and verified (offline, quick)."""
    from ops import models

    models.show(models.status(_env(env), verify=verify), f"models ({env})", json=json)


# --- kubernetes -----------------------------------------------------------------------------


@task(
    name="render",
    help={
        "env": ENV_HELP,
        "tag": "Image tag of the release (default: $IMAGE_TAG, else local).",
        "registry": "Image name prefix, e.g. registry.example.com/mi (default: $IMAGE_PREFIX, "
        "else mi).",
    },
)
def k8s_render(c: Context, env: str = "dev", tag: str = "", registry: str = "") -> None:
    """Print an environment's Kubernetes manifests (its Secret made from .env.<env>), for
    `| kubectl apply -f -`."""
    import os

    from ops import k8s

    k8s.show(
        _env(env),
        tag=tag or os.environ.get("IMAGE_TAG") or k8s.DEFAULT_TAG,
        registry=registry or os.environ.get("IMAGE_PREFIX") or k8s.BASE_IMAGE_PREFIX,
    )


@task(name="secrets", help={"env": ENV_HELP})
def k8s_secrets(c: Context, env: str = "dev") -> None:
    """Write infra/k8s/overlays/<env>/secrets.env and db-secrets.env from .env.<env>
    (git-ignored, mode 0600), for `kubectl apply -k infra/k8s/overlays/<env>`."""
    from ops import console, k8s

    path = k8s.write_secrets(_env(env))
    console.say(f"wrote {path} and db-secrets.env (mode 0600, git-ignored); never commit them")


ns = Collection(setup, doctor, up, down, ps, logs, health, build)
ns.add_collection(Collection("env", env_setup, env_check, env_example))
ns.add_collection(Collection("db", migrate, revision, downgrade, current, db_check))
backup = Collection("backup", backup_list, verify, restore)
backup.add_task(create, default=True)  # `inv backup` is `inv backup.create`
ns.add_collection(backup)
ns.add_collection(Collection("models", pull, models_list))
ns.add_collection(Collection("k8s", k8s_render, k8s_secrets))


# --- search ---------------------------------------------------------------------------------


@task(
    help={
        "env": ENV_HELP,
        "all": "Every done meeting, not only those without embeddings (after a model change).",
    }
)
def reindex(c: Context, env: str = "dev", all: bool = False) -> None:
    """Embed existing meetings for search by meaning: queues one `meetings.embed` task per
    meeting without embeddings (or every one with --all) for the running stack's workers."""
    from ops import search

    search.reindex(_env(env), everything=all)


ns.add_collection(Collection("search", reindex))
