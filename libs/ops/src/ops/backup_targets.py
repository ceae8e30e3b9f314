"""Where one environment's data lives, per runtime: its Postgres, its media, its app services.

Backup and restore need three things from a running stack, and each runtime provides them
differently:

- the Postgres client tools (`ops.pgclient`: local binaries, or `docker compose exec`);
- the media files: `LocalMedia` works on MEDIA_DIR directly (hard links to stage a backup,
  directory renames to swap in a restore); `ComposeMedia` reaches the `media` volume through
  a one-off backend container (`docker compose run`) with tar streams and small sh scripts;
- the app services that write the data (backend, worker): stopped for the swap, restarted
  and health-checked after it (`LocalApps` through supervisord, `ComposeApps` through
  `docker compose stop` / `up --wait`, `NoApps` when no stack of ours runs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from ops import envfile, project
from ops.errors import OpsError
from ops.pgclient import ComposeEndpoint, Endpoint, LocalEndpoint

if TYPE_CHECKING:
    from ops.supervisor import Supervisor

APPS = ("backend", "worker")
COMPOSE_MEDIA_MOUNT = "/data/media"  # where infra/compose mounts the `media` volume
COMPOSE_MEDIA_SERVICE = "backend"


def safe_media_name(name: str) -> bool:
    """Media file names come from database rows: never let one point outside MEDIA_DIR."""
    return bool(name) and "/" not in name and "\\" not in name and name not in {".", ".."}


@dataclass
class Staged:
    """Media files gathered for a backup: `directory/<name>` for each of `files`."""

    directory: Path
    files: list[str]
    missing: list[str]
    cleanup: Callable[[], None] = lambda: None


class MediaStore(Protocol):
    def stage(self, names: Sequence[str], scratch: Path) -> Staged:
        """Gather `names` (their rows are locked against deletion meanwhile)."""

    def restore_dir(self, scratch: Path) -> Path:
        """An empty directory to extract a backup's media into before the swap."""

    def swap_in(self, restored: Path) -> object:
        """Make `restored` the media; returns a token for `finish` or `rollback`."""

    def finish(self, token: object) -> None:
        """Delete the media that was replaced (the restore succeeded)."""

    def rollback(self, token: object) -> None:
        """Put the replaced media back."""


# --- local: MEDIA_DIR on this machine ---------------------------------------------------------


@dataclass
class LocalSwap:
    media: Path
    old: Path | None  # where the previous media went (None: there was none)
    failed: Path


@dataclass
class LocalMedia:
    directory: Path

    def _sibling(self, kind: str) -> Path:
        # Next to MEDIA_DIR: the same filesystem, so links and renames are cheap and atomic.
        return self.directory.parent / f".{self.directory.name}.{kind}-{uuid.uuid4().hex[:8]}"

    def stage(self, names: Sequence[str], scratch: Path) -> Staged:
        """Hard links: milliseconds for thousands of files, and a link keeps a file's data
        even when the app deletes the original right after the row locks are released."""
        target = self._sibling("backup")
        target.mkdir(mode=0o700, parents=True)
        files, missing = [], []
        for name in names:
            if not safe_media_name(name):
                missing.append(name)
                continue
            source = self.directory / name
            try:
                os.link(source, target / name)
            except FileNotFoundError:
                missing.append(name)
                continue
            except OSError:  # another filesystem, or links not allowed: copy
                shutil.copy2(source, target / name)
            files.append(name)
        return Staged(target, files, missing, lambda: shutil.rmtree(target, ignore_errors=True))

    def restore_dir(self, scratch: Path) -> Path:
        target = self._sibling("restore")
        target.mkdir(mode=0o755, parents=True)
        return target

    def swap_in(self, restored: Path) -> LocalSwap:
        swap = LocalSwap(self.directory, None, self._sibling("failed"))
        if self.directory.exists():
            old = self._sibling("before")
            self.directory.rename(old)
            swap.old = old
        restored.rename(self.directory)
        return swap

    def finish(self, token: object) -> None:
        assert isinstance(token, LocalSwap)
        if token.old is not None:
            shutil.rmtree(token.old, ignore_errors=True)

    def rollback(self, token: object) -> None:
        assert isinstance(token, LocalSwap)
        if token.media.exists():
            token.media.rename(token.failed)
        if token.old is not None:
            token.old.rename(token.media)
        shutil.rmtree(token.failed, ignore_errors=True)


# --- compose: the `media` volume through a one-off backend container ---------------------------

# $1 is the media mount, $2 a restore id. Names arrive NUL-separated on stdin and are never
# parsed as options; a name whose file is gone is skipped with a warning (it is reported).
STAGE_SCRIPT = (
    'cd "$1" && exec tar --create --file=- --ignore-failed-read --null '
    "--verbatim-files-from --files-from=-"
)

# Extract first (a failure leaves the live media untouched), then move the old files out and
# the restored ones in; the phase file tells ROLLBACK_SCRIPT which of them it must undo.
SWAP_SCRIPT = r"""set -eu
m=$1; id=$2; new="$m/.restore-$id"; old="$m/.before-$id"; phase="$m/.phase-$id"
mkdir "$new" "$old"
if ! tar --extract --file=- --directory="$new" --no-same-owner; then
    rm -rf "$new"; rmdir "$old"; exit 1
fi
echo out > "$phase"
find "$m" -mindepth 1 -maxdepth 1 ! -name '.restore-*' ! -name '.before-*' ! -name '.phase-*' \
    ! -name '.failed-*' -exec mv -t "$old" -- {} +
echo in > "$phase"
find "$new" -mindepth 1 -maxdepth 1 -exec mv -t "$m" -- {} +
rmdir "$new"
echo done > "$phase"
"""

ROLLBACK_SCRIPT = r"""set -eu
m=$1; id=$2; new="$m/.restore-$id"; old="$m/.before-$id"; phase="$m/.phase-$id"
bad="$m/.failed-$id"
state=$(cat "$phase" 2>/dev/null || echo none)
if [ "$state" = in ] || [ "$state" = done ]; then
    # Every file in $m is a restored one: the old ones were all moved out first.
    mkdir -p "$bad"
    find "$m" -mindepth 1 -maxdepth 1 ! -name '.restore-*' ! -name '.before-*' \
        ! -name '.phase-*' ! -name '.failed-*' -exec mv -t "$bad" -- {} +
fi
if [ -d "$old" ]; then
    find "$old" -mindepth 1 -maxdepth 1 -exec mv -t "$m" -- {} +
    rmdir "$old"
fi
rm -rf "$new" "$bad" "$phase"
"""

FINISH_SCRIPT = r"""set -eu
m=$1; id=$2
rm -rf "$m/.before-$id" "$m/.phase-$id"
"""


@dataclass
class ComposeMedia:
    compose: Sequence[str]
    mount: str = COMPOSE_MEDIA_MOUNT
    service: str = COMPOSE_MEDIA_SERVICE

    def argv(self, script: str, *args: str) -> list[str]:
        """A one-off container of the backend service (it mounts the media volume)."""
        return [
            *self.compose,
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "--entrypoint",
            "sh",
            self.service,
            "-c",
            script,
            "sh",
            self.mount,
            *args,
        ]

    def stage(self, names: Sequence[str], scratch: Path) -> Staged:
        target = scratch / "media"
        target.mkdir(mode=0o700)
        wanted = [n for n in names if safe_media_name(n)]
        proc = subprocess.Popen(
            self.argv(STAGE_SCRIPT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=project.root(),
        )
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, wanted), daemon=True)
        feeder.start()
        errors = _drain(proc.stderr)
        files = _extract_flat(proc.stdout, target)
        feeder.join()
        stderr = errors()
        if proc.wait() != 0:
            raise OpsError(
                f"could not read the media volume: {stderr.strip()[-500:]}",
                "is the stack up? `inv ps --env <env>`",
            )
        got = set(files)
        missing = [n for n in names if n not in got]
        return Staged(target, sorted(got), missing)

    def restore_dir(self, scratch: Path) -> Path:
        target = scratch / "media-restore"
        target.mkdir(mode=0o700)
        return target

    def swap_in(self, restored: Path) -> str:
        restore_id = uuid.uuid4().hex[:8]
        proc = subprocess.Popen(
            self.argv(SWAP_SCRIPT, restore_id),
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=project.root(),
        )
        assert proc.stdin is not None
        errors = _drain(proc.stderr)
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted(restored.iterdir()):
                    tar.add(path, arcname=path.name, recursive=False)
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        stderr = errors()
        if proc.wait() != 0:
            self.rollback(restore_id)
            raise OpsError(f"could not write the media volume: {stderr.strip()[-500:]}")
        return restore_id

    def _script(self, script: str, restore_id: str, what: str) -> None:
        proc = subprocess.run(
            self.argv(script, restore_id),
            capture_output=True,
            text=True,
            cwd=project.root(),
            check=False,
        )
        if proc.returncode != 0:
            raise OpsError(
                f"could not {what} in the media volume: {proc.stderr.strip()[-500:]}",
                f"look for {self.mount}/.before-{restore_id} in the volume",
            )

    def finish(self, token: object) -> None:
        self._script(FINISH_SCRIPT, str(token), "remove the replaced media")

    def rollback(self, token: object) -> None:
        self._script(ROLLBACK_SCRIPT, str(token), "put the previous media back")


def _drain(stream: IO[bytes] | None) -> Callable[[], str]:
    """Collect a pipe in the background (a full stderr pipe would stall the other one)."""
    chunks: list[bytes] = []
    thread = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: stream.read(65536), b"")) if stream else None,
        daemon=True,
    )
    thread.start()

    def result() -> str:
        thread.join(30)
        return b"".join(chunks).decode(errors="replace")

    return result


def _feed(stdin: IO[bytes], names: Sequence[str]) -> None:
    try:
        for name in names:
            stdin.write(name.encode() + b"\0")
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


def _extract_flat(stream: IO[bytes], target: Path) -> list[str]:
    """Regular files of a tar stream, written flat into `target` (nothing else is trusted)."""
    names = []
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if not member.isfile() or not safe_media_name(name):
                continue
            source = tar.extractfile(member)
            assert source is not None
            with (target / name).open("xb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            os.utime(target / name, (member.mtime, member.mtime))
            names.append(name)
    return names


# --- the app services -------------------------------------------------------------------------


class AppControl(Protocol):
    description: str

    def stop(self) -> list[str]:
        """Stop the services that write data; returns those that were running."""

    def migrate(self) -> None:
        """Bring the (restored) database to the code's head revision."""

    def start(self, names: Sequence[str], timeout: float) -> None:
        """Start `names` again and wait until they are healthy."""


@dataclass
class NoApps:
    """No stack of ours runs the apps (e.g. a database reached directly): data only."""

    database_url: str
    description: str = "no app services of ours run (the stack is not up): data only"

    def stop(self) -> list[str]:
        return []

    def migrate(self) -> None:
        _migrate_here(self.database_url)

    def start(self, names: Sequence[str], timeout: float) -> None:
        return None


def _migrate_here(database_url: str) -> None:
    from meetings import migrations

    try:
        migrations.upgrade(database_url)
    except Exception as exc:
        raise OpsError(f"migrating the restored database failed: {exc}") from exc


@dataclass
class LocalApps:
    env: str
    values: Mapping[str, str]
    description: str = "local runtime (supervisord)"

    def _supervisor(self) -> Supervisor:
        from ops.supervisor import Layout, Supervisor

        return Supervisor(Layout(project.data_dir(self.env)))

    def stop(self) -> list[str]:
        sup = self._supervisor()
        states = {i["name"]: i["statename"] for i in sup.info()}
        running = [n for n in APPS if states.get(n) in {"RUNNING", "STARTING", "BACKOFF"}]
        sup.stop_in_order(dict.fromkeys(running, 300), timeout=90)
        return running

    def migrate(self) -> None:
        _migrate_here(self.values["DATABASE_URL"])

    def start(self, names: Sequence[str], timeout: float) -> None:
        sup = self._supervisor()
        for name in names:
            sup.start_program(name)
        wait_healthy(self.values, ["postgres", *names], timeout)


def wait_healthy(values: Mapping[str, str], names: Sequence[str], timeout: float) -> None:
    """Poll the `inv health` checks named `names` until they all pass."""
    from common.health import run_checks
    from ops import health

    health._preload()
    checks = [c for c in health.checks_for(values) if c.name in names]
    deadline = time.monotonic() + timeout
    while True:
        report = asyncio.run(run_checks(checks))
        if report.ok:
            return
        if time.monotonic() > deadline:
            failing = "; ".join(f"{r.name}: {r.detail}" for r in report.results if not r.ok)
            raise OpsError(f"not healthy after {timeout:g}s: {failing}")
        time.sleep(0.3)


@dataclass
class ComposeApps:
    compose: Sequence[str]
    description: str = "compose runtime"

    def _run(self, command: Sequence[str], what: str) -> None:
        proc = subprocess.run(
            [*self.compose, *command],
            capture_output=True,
            text=True,
            cwd=project.root(),
            check=False,
        )
        if proc.returncode != 0:
            raise OpsError(f"docker compose could not {what}: {proc.stderr.strip()[-500:]}")

    def stop(self) -> list[str]:
        self._run(["stop", *APPS], "stop the app services")
        return list(APPS)

    def migrate(self) -> None:
        # The stack's own one-shot migration service, with the image's migration scripts.
        self._run(["run", "--rm", "--no-deps", "migrate"], "migrate the restored database")

    def start(self, names: Sequence[str], timeout: float) -> None:
        wait = ["--wait", "--wait-timeout", str(max(1, int(timeout)))]
        self._run(["up", "-d", *wait, *names], "start the app services")


# --- one environment's target -----------------------------------------------------------------


@dataclass
class Target:
    env: str
    runtime: str  # local | compose | direct
    endpoint: Endpoint
    media: MediaStore
    apps: AppControl
    values: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return self.endpoint.database


def _absolute(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else project.root() / path


def for_env(env: str) -> Target:
    """How to reach `env`'s data: through the runtime that runs its stack."""
    from ops import environments, runtimes

    environments.validate(env)
    values = envfile.load(env)
    if runtimes.recorded(env) == "compose":
        from ops.runtimes.compose import ComposeRuntime

        prefix = ComposeRuntime().argv(env, [])
        endpoint = ComposeEndpoint(prefix, values["POSTGRES_USER"], values["POSTGRES_DB"])
        return Target(env, "compose", endpoint, ComposeMedia(prefix), ComposeApps(prefix), values)
    endpoint_local = LocalEndpoint(values["DATABASE_URL"])
    media = LocalMedia(_absolute(values["MEDIA_DIR"]))
    from ops.runtimes.local import LocalRuntime

    if LocalRuntime().is_running(env):
        return Target(env, "local", endpoint_local, media, LocalApps(env, values), values)
    return Target(env, "direct", endpoint_local, media, NoApps(values["DATABASE_URL"]), values)
