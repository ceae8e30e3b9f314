"""Alert rules, Prometheus config and dashboard queries through the real promtool
(scripts/promtool_check.py): the repository passes, and each kind of breakage fails it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "promtool_check.py"
PIPELINE_RULES = "infra/prometheus/rules/pipeline.yml"
TARGET_RULES = "infra/prometheus/rules/targets.yml"
PIPELINE_BOARD = "infra/grafana/dashboards/pipeline.json"
OVERVIEW_BOARD = "infra/grafana/dashboards/overview.json"


@pytest.fixture(scope="session")
def check() -> ModuleType:
    name = "promtool_check"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module = sys.modules[name]
    try:
        module.promtool()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))  # CI installs it (.ci/run): a missing promtool is a failure
        pytest.skip(str(exc))
    return module


@pytest.fixture
def copy(tmp_path: Path, check: ModuleType) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "infra" / "prometheus", root / "infra" / "prometheus")
    shutil.copytree(ROOT / "infra" / "grafana", root / "infra" / "grafana")
    return root


def mutate(root: Path, relpath: str, old: str, new: str) -> None:
    path = root / relpath
    text = path.read_text()
    assert old in text, f"{relpath} no longer contains {old!r}: update the test"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("name", ["config", "rules", "coverage", "dashboards"])
def test_the_repository_passes(check: ModuleType, name: str) -> None:
    problems = check.CHECKS[name](ROOT)
    assert problems == [], "\n".join(map(str, problems))


def test_the_checks_see_every_rule_and_every_dashboard_query(check: ModuleType) -> None:
    """Guards the premises: nothing is skipped silently."""
    alerts = check.alerts(ROOT)
    assert {"WorkerAbsent", "QueueBacklogGrowing", "BackupTooOld", "WhisperNotReady"} <= set(alerts)
    assert set(alerts) <= check.tested_firing(ROOT)
    boards = {
        path.name: list(check.dashboard_queries(path, ROOT))
        for path in (ROOT / "infra" / "grafana" / "dashboards").glob("*.json")
    }
    assert set(boards) == {"overview.json", "pipeline.json"}
    assert len(boards["overview.json"]) == 5
    assert len(boards["pipeline.json"]) >= 15
    assert all("$" not in check.promql(q.expr) for qs in boards.values() for q in qs)


def test_a_rule_whose_threshold_drifted_fails_its_unit_test(check: ModuleType, copy: Path) -> None:
    mutate(
        copy,
        PIPELINE_RULES,
        "max(mi_oldest_queued_meeting_age_seconds) > 900",
        "max(mi_oldest_queued_meeting_age_seconds) > 9000",
    )
    problems = [str(p) for p in check.check_rule_tests(copy)]
    assert len(problems) == 1, problems
    assert problems[0].startswith("infra/prometheus/tests/pipeline.test.yml: [rules]")
    assert "OldestQueuedMeetingTooOld" in problems[0]


def test_a_rule_that_does_not_parse_fails_the_config_check(check: ModuleType, copy: Path) -> None:
    mutate(copy, TARGET_RULES, 'absent(up{job="worker"} == 1)', 'absent(up{job="worker"} == 1')
    problems = [str(p) for p in check.check_config(copy)]
    assert len(problems) == 1, problems
    assert "targets.yml" in problems[0]
    assert "parse error" in problems[0]


def test_an_alert_without_a_firing_test_fails_coverage(check: ModuleType, copy: Path) -> None:
    mutate(
        copy,
        PIPELINE_RULES,
        "      - alert: PipelineSourceDown\n",
        "      - alert: NobodyTestedThis\n"
        "        expr: vector(1)\n"
        "      - alert: PipelineSourceDown\n",
    )
    assert [str(p) for p in check.check_coverage(copy)] == [
        f"{PIPELINE_RULES}: [coverage] alert NobodyTestedThis has no test in "
        "infra/prometheus/tests that makes it fire"
    ]


@pytest.mark.parametrize(
    ("board", "old", "new", "panel"),
    [
        (
            PIPELINE_BOARD,
            "max by (queue) (mi_queue_depth)",
            "max by (queue) (mi_queue_depth",
            "'Queue depth'",
        ),
        (
            OVERVIEW_BOARD,
            "sum by (service, route) (rate(http_requests_total[5m]))",
            "sum by (service, route) (rat(http_requests_total[5m]))",
            "'HTTP requests per second'",
        ),
    ],
    ids=["unclosed-parenthesis", "unknown-function"],
)
def test_a_typo_in_a_dashboard_query_fails_naming_the_panel(
    check: ModuleType, copy: Path, board: str, old: str, new: str, panel: str
) -> None:
    mutate(copy, board, old, new)
    problems = [str(p) for p in check.check_dashboards(copy)]
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{board}: [dashboards] panel ")
    assert panel in problems[0]
    assert new in problems[0]


def test_the_nox_command_fails_on_a_broken_copy(copy: Path) -> None:
    mutate(copy, PIPELINE_RULES, "> 0.1", "> 0.9")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "rules: 1 problem(s)" in proc.stdout
    assert "PipelineFailureRatioHigh" in proc.stdout
    assert "config: ok" in proc.stdout
