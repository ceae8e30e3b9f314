"""The drill's client, run on the `client` host (its own network namespace):

    python client.py submit URL TOKEN AUDIO COUNT TITLE   -> JSON list of meeting ids
    python client.py wait URL TOKEN IDS_JSON TIMEOUT      -> JSON {id: meeting}, seconds
    python client.py ready URL TIMEOUT                    -> exit 0 once /health/ready is 200

Uploads go out one after another (as users would, not all in one request); `wait` polls
until every meeting is done or failed, or the timeout passes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx


def submit(url: str, token: str, audio: Path, count: int, title: str) -> list[str]:
    data = audio.read_bytes()
    ids = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        for number in range(count):
            reply = http.post(
                "/api/v1/meetings",
                files={"file": (audio.name, data, "audio/wav")},
                data={"title": f"{title} {number + 1}"},
            )
            reply.raise_for_status()
            ids.append(reply.json()["id"])
    return ids


def wait(url: str, token: str, ids: list[str], timeout: float) -> dict[str, object]:
    started = time.monotonic()
    final: dict[str, dict[str, object]] = {}
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        while len(final) < len(ids) and time.monotonic() - started < timeout:
            for meeting_id in ids:
                if meeting_id in final:
                    continue
                body = http.get(f"/api/v1/meetings/{meeting_id}").json()
                if body["status"] in {"done", "failed"}:
                    final[meeting_id] = body
            time.sleep(0.25)
    return {"seconds": round(time.monotonic() - started, 2), "meetings": final}


def ready(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return False


def main(argv: list[str]) -> int:
    if argv[0] == "ready":
        return 0 if ready(argv[1], float(argv[2])) else 1
    command, url, token = argv[:3]
    if command == "submit":
        audio, count, title = Path(argv[3]), int(argv[4]), argv[5]
        print(json.dumps(submit(url, token, audio, count, title)))  # noqa: T201
        return 0
    if command == "wait":
        ids = json.loads(Path(argv[3]).read_text())
        print(json.dumps(wait(url, token, ids, float(argv[4]))))  # noqa: T201
        return 0
    sys.stderr.write(f"unknown command {command!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
