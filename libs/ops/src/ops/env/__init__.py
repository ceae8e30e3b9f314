"""`inv env.*`: write, check and prepare an environment's `.env.<env>` from the schema.

`schema` is the one typed schema of the file, `file` reads and writes it strictly; this
module is what the tasks (and `inv up`) call.
"""

from __future__ import annotations

import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ops import console, durable
from ops.env import file, schema
from ops.env.file import Problem, Scan
from ops.environment import Environment
from ops.errors import OpsError


@dataclass(frozen=True)
class SetupReport:
    path: Path
    created: bool
    added: list[str]
    replaced: list[str]
    generated: list[str]
    kept: list[str]
    updated: list[str] = field(default_factory=list)

    def show(self) -> None:
        console.say(f"{'created' if self.created else 'updated'} {self.path} (mode 0600)")
        for label, keys in [
            ("added", self.added),
            ("replaced (--force)", self.replaced),
            ("updated (an older release's default)", self.updated),
            ("generated secrets", self.generated),
        ]:
            if keys:
                console.say(f"  {label}: {', '.join(keys)}")
        if self.kept:
            console.say(f"  kept {len(self.kept)} existing value(s); --force replaces them")


def generate_secret() -> str:
    # URL-safe so it can sit in DATABASE_URL/REDIS_URL without escaping.
    return secrets.token_urlsafe(32)


def setup(env: Environment, *, force: bool = False) -> SetupReport:
    """Create or complete `.env.<env>`; existing values are kept unless `force`."""
    path = env.env_file
    existing = file.parse(path) if path.exists() else {}
    defaults = schema.defaults_for(env)
    secret_keys = set(schema.secret_keys())

    values: dict[str, str] = {}
    added: list[str] = []
    replaced: list[str] = []
    updated: list[str] = []
    generated: list[str] = []
    kept: list[str] = []
    for key in schema.all_keys():
        outdated = existing.get(key) in schema.FORMER_DEFAULTS.get(key, ())
        if key in existing and not force and not outdated:
            values[key] = existing[key]
            kept.append(key)
            continue
        values[key] = generate_secret() if key in secret_keys else defaults[key]
        (updated if outdated and not force else replaced if key in existing else added).append(key)
        if key in secret_keys:
            generated.append(key)
    unknown = {k: v for k, v in existing.items() if k not in values}

    text = file.render(env.name, values, unknown)
    path.parent.mkdir(parents=True, exist_ok=True)
    durable.write_atomically(path, text)
    return SetupReport(path, not existing, added, replaced, generated, kept, updated)


def check(env: Environment, *, probe: bool = True) -> list[Problem]:
    """Everything wrong with `.env.<env>`; an empty list means it is usable. With `probe`, an
    external object store (MEDIA_STORE=s3) is also tried over the network."""
    from pydantic import ValidationError

    path = env.env_file
    result = file.scan(path)
    problems = list(result.problems)
    known = schema.all_keys()

    missing = [key for key in known if key not in result.values]
    if missing:
        problems.append(
            Problem(f"missing keys: {', '.join(missing)} (`inv env.setup --env {env}` adds them)")
        )
    values = file.interpolate(result.values)
    tuning = schema.tuning_keys()
    for name in result.values:
        if name in tuning:
            reason = schema.validate_tuning(tuning[name], values[name])
            if reason:
                problems.append(Problem(f"{name}: {reason}", result.lines[name], name))
        elif name not in known:
            problems.append(
                Problem(f"unknown key {name} (typo? see .env.example)", result.lines[name], name)
            )

    present = {k.lower(): v for k, v in values.items() if k in known}
    try:
        schema.StackSettings.model_validate(present)
    except ValidationError as exc:
        for error in exc.errors():
            key = str(error["loc"][0]).upper() if error["loc"] else None
            if key in missing:
                continue
            shown = values.get(key or "", "")
            problems.append(
                Problem(f"{key}={shown!r}: {error['msg']}", result.lines.get(key or ""), key)
            )

    problems += _role_problems(values, result.lines)
    if probe and not problems and values.get("MEDIA_STORE") == "s3":
        problems += _store_problems(env, values)

    if values.get("APP_ENV", env.name) != env.name:
        problems.append(
            Problem(
                f"APP_ENV is {values['APP_ENV']!r} in {path.name}",
                result.lines["APP_ENV"],
                "APP_ENV",
            )
        )
    if env.protected:
        problems += _weak_secrets(result, schema.secret_keys())
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            problems.append(
                Problem(f"{path.name} is readable by others (mode {mode:o}): chmod 600 {path.name}")
            )
    return problems


def _role_problems(values: dict[str, str], lines: dict[str, int]) -> list[Problem]:
    """The services must not connect as the superuser or the owner (least privilege)."""
    from urllib.parse import unquote, urlsplit

    url = values.get("DATABASE_URL", "")
    try:
        user = unquote(urlsplit(url).username or "")
    except ValueError:
        return []  # not a URL: the schema's own validation says so
    for key in ("POSTGRES_USER", "POSTGRES_OWNER_USER"):
        if user and user == values.get(key):
            return [
                Problem(
                    f"DATABASE_URL connects as {user} ({key}), which may change the schema: "
                    "the services connect as POSTGRES_APP_USER (`inv env.setup` writes "
                    "the default URL when the old one was generated)",
                    lines.get("DATABASE_URL"),
                    "DATABASE_URL",
                )
            ]
    return []


def _store_problems(env: Environment, values: dict[str, str]) -> list[Problem]:
    """An external object store is probed (list, write, delete): the settings may all be
    well-formed and still name a wrong key, a missing bucket or one this key may not write."""
    from ops import media

    if media.uses_own_store(values):
        return []  # the stack's own store runs only once the stack is up (`inv health`)
    try:
        media.check(values, write=True, env=env.name)
    except OpsError as exc:
        return [Problem(f"{exc.problem} ({exc.fix})", key="S3_ENDPOINT_URL")]
    return []


def _weak_secrets(result: Scan, keys: Iterable[str]) -> list[Problem]:
    problems = []
    for key in keys:
        value = result.values.get(key)
        if value is None:
            continue
        line = result.lines[key]
        if value.lower() in schema.PLACEHOLDERS:
            problems.append(
                Problem(
                    f"{key} is a placeholder: generate one with `inv env.setup --force`", line, key
                )
            )
        elif len(value) < schema.MIN_SECRET_LENGTH or len(set(value)) < 8:
            problems.append(
                Problem(
                    f"{key} is weak: use at least {schema.MIN_SECRET_LENGTH} random characters",
                    line,
                    key,
                )
            )
    return problems


def require_valid(env: Environment, *, probe: bool = True) -> None:
    """Raise, listing every problem of `.env.<env>`, unless it is usable."""
    problems = check(env, probe=probe)
    if problems:
        listing = "\n  ".join(str(p) for p in problems)
        raise OpsError(
            f"{env.env_file.name} has {len(problems)} problem(s):\n  {listing}",
            f"fix them (`uv run inv env.check --env {env}` re-checks)",
        )


def prepare(env: Environment) -> dict[str, str]:
    """What `inv up` needs, whatever the runtime: the env file's values, interpolated, after
    checking it. dev's file is created on first use and completed when the schema grew;
    staging and prod are never configured implicitly."""
    path = env.env_file
    if not path.exists():
        if env.protected:
            raise OpsError(
                f"{path.name} does not exist; {env} is never configured implicitly",
                f"create it with `uv run inv env.setup --env {env}`, review it, then `inv up`",
            )
        setup(env)
        console.say(f"created {path.name} with generated secrets (mode 0600)")
    elif not env.protected:
        # A newer template may have added keys: complete dev's file, never overwriting.
        scanned = file.scan(path)
        outdated = [
            key
            for key, former in schema.FORMER_DEFAULTS.items()
            if scanned.values.get(key) in former
        ]
        if not scanned.problems and (set(schema.all_keys()) - set(scanned.values) or outdated):
            report = setup(env)
            changed = [*report.added, *report.updated]
            console.say(f"added or updated {', '.join(changed)} in {path.name}")
    require_valid(env)
    return env.values()


def example_path() -> Path:
    from ops import project

    return project.root() / ".env.example"


def write_example(*, check_only: bool = False) -> Path:
    """Regenerate `.env.example` from the schema; with `check_only`, fail when it is stale."""
    path = example_path()
    text = schema.render_example()
    if check_only:
        if not path.exists() or path.read_text() != text:
            raise OpsError(".env.example is stale", "run `uv run inv env.example`")
        return path
    path.write_text(text)
    return path
