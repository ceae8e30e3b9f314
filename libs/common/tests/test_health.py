import asyncio
import time

import pytest

from common.health import Check, run_checks


async def _ok() -> str:
    return "fine"


async def _boom() -> None:
    raise ConnectionRefusedError("connection refused on 127.0.0.1:1")


async def _slow() -> None:
    await asyncio.sleep(5)


def test_checks_run_concurrently_and_time_out_individually():
    checks = [
        Check("a", _slow, timeout=0.3),
        Check("b", _slow, timeout=0.3),
        Check("c", _ok),
    ]
    start = time.perf_counter()
    report = asyncio.run(run_checks(checks))
    elapsed = time.perf_counter() - start

    assert elapsed < 0.55, "checks must run in parallel, not one after another"
    by_name = {r.name: r for r in report.results}
    assert not by_name["a"].ok
    assert by_name["a"].detail == "no answer within 0.3s"
    assert by_name["c"].ok and by_name["c"].detail == "fine"


@pytest.mark.parametrize(("required", "expected"), [(True, False), (False, True)])
def test_only_required_failures_make_the_report_fail(required, expected):
    report = asyncio.run(run_checks([Check("ok", _ok), Check("db", _boom, required=required)]))
    assert report.ok is expected
    payload = report.as_dict()
    assert payload["status"] == ("ok" if expected else "fail")
    assert "ConnectionRefusedError: connection refused" in payload["checks"]["db"]["detail"]
    assert payload["checks"]["db"]["latency_ms"] >= 0
