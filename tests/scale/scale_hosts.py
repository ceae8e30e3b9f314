"""Hosts made of network namespaces on this machine, for the multi-host drill.

Each host is a namespace with its own loopback and one interface on a shared bridge (itself in
a namespace of its own, so the machine's own network is never touched), addressed in
127.42.<net>.0/24: loopback-range addresses only, which Linux routes over an interface once
`route_localnet` is on and the host's loopback claims 127.0.0.1 alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mi_testing import ServiceProcess


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(["netns", "exec", namespace, "ip"] if namespace else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


def can_make_hosts() -> str | None:
    """None when this machine can run the drill, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command is missing (apt-get install iproute2)"
    probe = f"mi-probe-{secrets.token_hex(3)}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if proc.returncode != 0:
        return f"cannot create network namespaces here: {proc.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    root: Path  # this host's own directory: nothing in it is shared with another host
    processes: list[ServiceProcess] = field(default_factory=list)

    def command(self, argv: list[str], *, user: str | None = None) -> list[str]:
        prefix = ["ip", "netns", "exec", self.namespace]
        if user:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]
        return [*prefix, *argv]

    def start(
        self, name: str, argv: list[str], env: dict[str, str], *, user: str | None = None
    ) -> ServiceProcess:
        process = ServiceProcess(self.command(argv, user=user), env, self.root / f"{name}.log")
        process.start()
        self.processes.append(process)
        return process

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 120) -> str:
        proc = subprocess.run(
            self.command(argv), env=env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} on {self.name} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def pids(self) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.namespace], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def crash(self) -> int:
        """SIGKILL every process of this host at once: the machine lost its power."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.process.wait(10)  # type: ignore[union-attr]
        return len(pids)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=30)
        self.crash()  # anything left over


class Network:
    """A bridge and the hosts on it; `close()` removes every namespace and interface."""

    def __init__(self, root: Path, net: int = 42) -> None:
        self.token = secrets.token_hex(2)
        self.root = root
        self.net = net
        self.switch = f"mi-scale-{self.token}-sw"
        self.hosts: dict[str, Host] = {}
        ip("netns", "add", self.switch)
        ip("link", "add", "br0", "type", "bridge", namespace=self.switch)
        ip("link", "set", "br0", "up", namespace=self.switch)

    def add(self, name: str) -> Host:
        index = len(self.hosts) + 1
        namespace = f"mi-scale-{self.token}-{name}"
        address = f"127.{self.net}.0.{10 + index}"
        here, there = f"ms{self.token}{index}h", f"ms{self.token}{index}b"
        ip("netns", "add", namespace)
        ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", self.switch)
        ip("link", "set", here, "netns", namespace)
        ip("link", "set", there, "master", "br0", "up", namespace=self.switch)
        script = [
            "sysctl -qw net.ipv4.conf.all.route_localnet=1",
            f"sysctl -qw net.ipv4.conf.{here}.route_localnet=1",
            "ip link set lo up",
            # The host's loopback keeps 127.0.0.1 only; the rest of 127/8 may leave by eth.
            "ip route del local 127.0.0.0/8 dev lo table local",
            "ip route replace local 127.0.0.1 dev lo table local",
            f"ip addr add {address}/24 dev {here}",
            f"ip link set {here} up",
        ]
        subprocess.run(
            ["ip", "netns", "exec", namespace, "sh", "-ec", "; ".join(script)],
            check=True,
            capture_output=True,
        )
        host = Host(name, namespace, address, self.root / name)
        host.root.mkdir(parents=True)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.stop()
        for host in self.hosts.values():
            ip("netns", "del", host.namespace, check=False)
        ip("netns", "del", self.switch, check=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Network]:
        try:
            yield self
        finally:
            self.close()
