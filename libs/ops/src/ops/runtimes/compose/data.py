"""The compose runtime's data: Postgres through `docker compose exec` (its port is not published
in staging/prod), the `media` volume through a one-off backend container (`docker compose run`)
with tar streams and small sh scripts, and the app services through `stop` / `up --wait`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ops import project
from ops.errors import OpsError
from ops.runtimes.base import APPS, CLIENT_APPLICATION_NAME, Staged, safe_media_name

COMPOSE_MEDIA_MOUNT = "/data/media"  # where infra/compose mounts the `media` volume
COMPOSE_MEDIA_SERVICE = "backend"


@dataclass
class ComposeEndpoint:
    """The tools inside the postgres container; the image trusts its local socket."""

    compose: Sequence[str]  # `docker compose -p mi-<env> -f ... --env-file ...`
    user: str
    database: str

    def argv(self, tool: str, args: Sequence[str], *, database: str) -> list[str]:
        return [
            *self.compose,
            "exec",
            "-T",
            "-e",
            f"PGAPPNAME={CLIENT_APPLICATION_NAME}",
            "postgres",
            tool,
            "--username",
            self.user,
            *args,
            "--dbname",
            database,
        ]

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def restore_input(self) -> bool:
        return True


# $1 is the media mount, $2 a backup id. Set recordings aside by hard links inside the volume
# (the same filesystem: microseconds each) while their rows are locked. Names arrive one per
# line, a batch ends with an empty line and is answered `done`; a name whose file is gone is
# answered `gone <name>`. The container starts (seconds) before any row is locked.
LINK_SCRIPT = r"""set -eu
m=$1; d="$m/.backup-$2"
mkdir -m 700 "$d"
echo ready
while IFS= read -r name; do
    if [ -z "$name" ]; then echo done; continue; fi
    if ln -- "$m/$name" "$d/$name" 2>/dev/null || cp -p -- "$m/$name" "$d/$name" 2>/dev/null
    then :; else echo "gone $name"; fi
done
"""

LINK_BATCH = 500

# Read what LINK_SCRIPT set aside, with no row locked any more; then remove it.
FETCH_SCRIPT = 'cd "$1/.backup-$2" && exec tar --create --file=- .'
DROP_SCRIPT = 'rm -rf -- "$1/.backup-$2"'

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

    def stager(self, scratch: Path) -> ComposeStager:
        stager = ComposeStager(self, scratch)
        stager.start()
        return stager

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


@dataclass
class ComposeStager:
    """One long-lived container links each batch aside (LINK_SCRIPT); `staged` then copies
    the links out of the volume and removes them (FETCH_SCRIPT, DROP_SCRIPT)."""

    media: ComposeMedia
    scratch: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _errors: Callable[[], str] = lambda: ""

    def start(self) -> None:
        self._proc = subprocess.Popen(
            self.media.argv(LINK_SCRIPT, self.run_id),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=project.root(),
        )
        self._errors = _drain(self._proc.stderr)
        self._expect(b"ready")

    def _fail(self, what: str) -> OpsError:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(30)
        return OpsError(
            f"could not {what} in the media volume: {self._errors().strip()[-500:]}",
            "is the stack up? `inv ps --env <env>`",
        )

    def _expect(self, word: bytes) -> list[bytes]:
        """The lines before `word`."""
        assert self._proc is not None and self._proc.stdout is not None
        lines = []
        while (line := self._proc.stdout.readline()) != word + b"\n":
            if not line:
                raise self._fail("set the recordings aside")
            lines.append(line.rstrip(b"\n"))
        return lines

    def add(self, names: Sequence[str]) -> list[str]:
        assert self._proc is not None and self._proc.stdin is not None
        # A line per name: one with a line break cannot be sent, and the backend never makes one.
        wanted = [n for n in names if safe_media_name(n) and "\n" not in n]
        gone_here: set[str] = set()
        # Batches small enough that their answers fit in a pipe's buffer: the script never
        # blocks writing while this side still writes.
        for start in range(0, len(wanted), LINK_BATCH):
            batch = wanted[start : start + LINK_BATCH]
            try:
                self._proc.stdin.write(b"".join(n.encode() + b"\n" for n in batch) + b"\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise self._fail("set the recordings aside") from None
            answers = self._expect(b"done")
            gone_here |= {a[5:].decode() for a in answers if a.startswith(b"gone ")}
        gone = [n for n in names if n not in wanted or n in gone_here]
        self.files += [n for n in wanted if n not in gone_here]
        self.missing += gone
        return gone

    def staged(self) -> Staged:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()
        if self._proc.wait() != 0:
            raise self._fail("set the recordings aside")
        target = self.scratch / "media"
        target.mkdir(mode=0o700)
        try:
            proc = subprocess.Popen(
                self.media.argv(FETCH_SCRIPT, self.run_id),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=project.root(),
            )
            assert proc.stdout is not None
            errors = _drain(proc.stderr)
            got = _extract_flat(proc.stdout, target)
            if proc.wait() != 0 or sorted(got) != sorted(self.files):
                raise OpsError(
                    f"could not read the media volume: {errors().strip()[-500:]}",
                    "is the stack up? `inv ps --env <env>`",
                )
        finally:
            self.discard()
        return Staged(target, sorted(got), list(self.missing))

    def discard(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(OpsError):
            self.media._script(DROP_SCRIPT, self.run_id, "remove the backup's links")


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
