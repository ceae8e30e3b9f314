#!/usr/bin/env python3
"""Container health probes: exit 0 when healthy, 1 (with one line on stderr) when not.

    healthcheck.py http URL [--timeout S]            2xx from URL (e.g. /health)
    healthcheck.py grpc HOST:PORT [--service NAME]   grpc.health.v1 answers SERVING

Docker HEALTHCHECKs and compose healthchecks run this inside the images with the venv's
interpreter: http needs only the standard library, grpc the workspace's one gRPC health probe
(`common.grpc_health`, in every image). It never raises a traceback: a probe that fails says
why in one line.

URL and target may name environment variables (`http://127.0.0.1:${BACKEND_PORT}/health`): they
are expanded here, so exec-form HEALTHCHECKs (no shell) still follow the container's settings.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

DEFAULT_TIMEOUT = 3.0


def check_http(url: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """None when `url` answers 2xx, else what went wrong."""
    if not url.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url!r}"
    try:
        # Only http(s) URLs reach this call (checked above).
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url} unreachable: {reason}"
    except (ValueError, http.client.HTTPException) as exc:  # bad port, garbled reply
        return f"{url}: {exc}"
    if not 200 <= status < 300:
        return f"{url} answered {status}"
    return None


def check_grpc(target: str, service: str = "", timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """None when the grpc.health.v1 service at `target` reports SERVING for `service`."""
    from common import grpc_health

    try:
        grpc_health.check(target, timeout=timeout, service=service)
    except grpc_health.NotServingError as exc:
        return f"{target}: {exc}"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="healthcheck.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    http = sub.add_parser("http", help="GET a URL and expect 2xx")
    http.add_argument("url")
    http.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    grpc_ = sub.add_parser("grpc", help="grpc.health.v1 Check and expect SERVING")
    grpc_.add_argument("target", help="HOST:PORT")
    grpc_.add_argument("--service", default="", help="service name ('' = the whole server)")
    grpc_.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    where = os.path.expandvars(args.url if args.kind == "http" else args.target)
    if "$" in where:
        problem: str | None = f"{where} names an environment variable that is not set"
    elif args.kind == "http":
        problem = check_http(where, args.timeout)
    else:
        problem = check_grpc(where, args.service, args.timeout)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
