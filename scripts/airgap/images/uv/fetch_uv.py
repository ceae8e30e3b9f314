#!/usr/bin/env python3
"""Fetch the uv and uvx binaries of one uv release from a Python package index.

    fetch_uv.py --version 0.13.9 --out DIR [--index-url URL] [--extra-ca PEM]

Runs inside the uv stand-in's build (standard library only). It reads the index's simple API
(PEP 691 JSON, else the PEP 503 HTML page), picks the manylinux wheel for this machine,
checks its sha256 against the index, and writes DIR/uv and DIR/uvx. An empty or missing
--extra-ca file is ignored; a non-empty one is trusted on top of the system CAs.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import platform
import re
import ssl
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def tls_context(extra_ca: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if extra_ca is not None and extra_ca.is_file() and extra_ca.stat().st_size > 0:
        context.load_verify_locations(cafile=str(extra_ca))
    return context


def list_files(index_url: str, context: ssl.SSLContext) -> list[tuple[str, str, str]]:
    """(filename, absolute url, sha256) of every file the index lists for uv."""
    page = index_url.rstrip("/") + "/uv/"
    if not page.startswith(("https://", "http://")):
        raise SystemExit(f"fetch_uv: the index URL must be http(s): {index_url}")
    accept = {"Accept": f"{JSON_TYPE}, text/html;q=0.1"}
    request = urllib.request.Request(page, headers=accept)  # noqa: S310 - http(s) only, above
    with urllib.request.urlopen(request, context=context, timeout=60) as response:  # noqa: S310
        kind = response.headers.get_content_type()
        body = response.read().decode()
    if kind == JSON_TYPE:
        return [
            (f["filename"], urllib.parse.urljoin(page, f["url"]), f["hashes"].get("sha256", ""))
            for f in json.loads(body)["files"]
        ]
    files = []
    for href, name in re.findall(r'<a[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', body):
        url, _, fragment = html.unescape(href).partition("#")
        digest = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else ""
        files.append((name.strip(), urllib.parse.urljoin(page, url), digest))
    return files


def pick_wheel(files: list[tuple[str, str, str]], version: str) -> tuple[str, str, str]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    machine = machine or platform.machine().lower()
    for name, url, digest in files:
        if (
            name.startswith(f"uv-{version}-")
            and name.endswith(".whl")
            and "manylinux" in name
            and re.search(rf"manylinux[^.]*_{machine}\b", name)
        ):
            return name, url, digest
    raise SystemExit(f"fetch_uv: no manylinux {machine} wheel of uv {version} on the index")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--index-url", default="https://pypi.org/simple")
    parser.add_argument("--extra-ca", type=Path)
    args = parser.parse_args(argv)

    context = tls_context(args.extra_ca)
    name, url, expected = pick_wheel(list_files(args.index_url, context), args.version)
    if not expected:
        raise SystemExit(f"fetch_uv: the index gives no sha256 for {name}: refusing to trust it")
    with urllib.request.urlopen(url, context=context, timeout=300) as response:  # noqa: S310
        data = response.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise SystemExit(f"fetch_uv: {name} has sha256 {actual}, the index says {expected}")

    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        for binary in ("uv", "uvx"):
            member = f"uv-{args.version}.data/scripts/{binary}"
            target = args.out / binary
            target.write_bytes(wheel.read(member))
            target.chmod(0o755)
    print(f"fetch_uv: {name} (sha256 {actual[:12]}...) -> {args.out}/uv, uvx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
