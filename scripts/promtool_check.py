#!/usr/bin/env python3
"""Prometheus config, alert rules and Grafana queries, checked by promtool: `nox -s infra`.

    python scripts/promtool_check.py [--root DIR]

1. config:    `promtool check config` on infra/prometheus/prometheus.yml (and the rule files
              it loads through `rule_files`).
2. rules:     `promtool test rules` on infra/prometheus/tests/*.test.yml.
3. coverage:  every alert in infra/prometheus/rules/ is expected to fire in some rule test.
4. dashboards: every PromQL expression of every dashboard in infra/grafana/dashboards/,
              wrapped into a generated rule file (Grafana's $variables replaced by durations)
              for `promtool check rules`: a typo in a panel fails here, not on a screen.

promtool comes with Debian's `prometheus` package (`apt-get install -y prometheus`). Each
problem is printed as `file: [check] message`; the exit status is 1 when there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMETHEUS = Path("infra/prometheus")
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = PROMETHEUS / "rules"
RULE_TESTS = PROMETHEUS / "tests"
DASHBOARDS = Path("infra/grafana/dashboards")
# Grafana's built-in interval variables, replaced by a duration promtool can parse.
GRAFANA_DURATIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__rate_interval}": "5m",
    "${__interval}": "1m",
    "${__range}": "1h",
}


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.check}] {self.message}"


def _yaml(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML  # check-jsonschema's YAML library (validate group), typed

    data = YAML(typ="safe", pure=True).load(path.read_text())
    return data if isinstance(data, dict) else {}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise FileNotFoundError(
            "promtool is not installed: `apt-get install -y prometheus` (Debian ships it there)"
        )
    return found


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *argv], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(line for line in (proc.stdout + proc.stderr).splitlines() if line.strip())


# --- 1. config ----------------------------------------------------------------------------


def check_config(root: Path) -> list[Problem]:
    proc = _run(["check", "config", str(CONFIG)], root)
    if proc.returncode == 0:
        return []
    return [Problem(str(CONFIG), "config", _output(proc))]


# --- 2. rule unit tests ---------------------------------------------------------------------


def rule_test_files(root: Path) -> list[Path]:
    return sorted((root / RULE_TESTS).glob("*.test.yml"))


def check_rule_tests(root: Path) -> list[Problem]:
    files = rule_test_files(root)
    if not files:
        return [Problem(str(RULE_TESTS), "rules", "no *.test.yml files: every rule needs tests")]
    problems = []
    for path in files:
        proc = _run(["test", "rules", str(path.relative_to(root))], root)
        if proc.returncode != 0:
            problems.append(Problem(str(path.relative_to(root)), "rules", _output(proc)))
    return problems


# --- 3. every alert has a test that makes it fire ---------------------------------------------


def alerts(root: Path) -> dict[str, str]:
    """Alert name -> the rule file defining it."""
    found = {}
    for path in sorted((root / RULES).glob("*.yml")):
        for group in _yaml(path).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    found[rule["alert"]] = str(path.relative_to(root))
    return found


def tested_firing(root: Path) -> set[str]:
    fired = set()
    for path in rule_test_files(root):
        for test in _yaml(path).get("tests", []):
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
    return fired


def check_coverage(root: Path) -> list[Problem]:
    fired = tested_firing(root)
    return [
        Problem(file, "coverage", f"alert {name} has no test in {RULE_TESTS} that makes it fire")
        for name, file in sorted(alerts(root).items())
        if name not in fired
    ]


# --- 4. dashboard queries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    expr: str


def _panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from _panels(panel.get("panels") or [])  # rows hold their own panels


def dashboard_queries(path: Path, root: Path) -> Iterator[Query]:
    board = json.loads(path.read_text())
    name = str(path.relative_to(root))
    for panel in _panels(board.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                title = f"panel {panel.get('id')} {panel.get('title', '')!r}"
                yield Query(name, title, target.get("refId", "?"), target["expr"])
    for variable in (board.get("templating") or {}).get("list") or []:
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str) and query and not query.startswith("label_values("):
            yield Query(name, f"variable {variable.get('name')!r}", "query", query)


def promql(expr: str) -> str:
    """The expression as Prometheus would get it from Grafana (variables substituted)."""
    for variable, duration in GRAFANA_DURATIONS.items():
        expr = expr.replace(variable, duration)
    # Template variables of the dashboard itself: any value will do for a syntax check.
    return re.sub(r"\$\{?[A-Za-z_]\w*\}?", "x", expr)


def check_dashboards(root: Path) -> list[Problem]:
    queries = [
        q
        for path in sorted((root / DASHBOARDS).glob("*.json"))
        for q in dashboard_queries(path, root)
    ]
    if not queries:
        return []
    names = {f"dashboard_query_{i}": q for i, q in enumerate(queries)}
    rules = {
        "groups": [
            {
                "name": "grafana-dashboards",
                "rules": [{"record": name, "expr": promql(q.expr)} for name, q in names.items()],
            }
        ]
    }
    with tempfile.TemporaryDirectory() as scratch:
        generated = Path(scratch) / "dashboards.rules.yml"
        generated.write_text(json.dumps(rules, indent=1))  # JSON is YAML to promtool
        proc = _run(["check", "rules", str(generated)], root)
    if proc.returncode == 0:
        return []
    problems = []
    output = _output(proc)
    for name, query in names.items():
        # promtool names the failing rule by its record name (`... "dashboard_query_3": ...`).
        for line in output.splitlines():
            if re.search(rf"\b{name}\b", line):
                problems.append(
                    Problem(
                        query.dashboard,
                        "dashboards",
                        f"{query.panel} query {query.ref}: {line.strip()} in {query.expr!r}",
                    )
                )
    return problems or [Problem(str(DASHBOARDS), "dashboards", output)]


CHECKS: dict[str, Callable[[Path], list[Problem]]] = {
    "config": check_config,
    "rules": check_rule_tests,
    "coverage": check_coverage,
    "dashboards": check_dashboards,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    try:
        promtool()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    failed = 0
    for name, check in CHECKS.items():
        problems = sorted(set(check(args.root)))
        print(f"{name}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"  {problem}")
        failed += len(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
