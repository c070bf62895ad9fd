"""The shipped Prometheus and Grafana files, and the metric names their queries use.

Shared by the promtool tests (tests/ops/test_prometheus_rules.py) and the running-agent test
that checks every name against a real exposition (tests/runtime/test_running_agent.py).
"""

from __future__ import annotations

__all__ = [
    "DASHBOARD",
    "PROMETHEUS_DIR",
    "PROMTOOL",
    "RULES",
    "RULES_TEST",
    "dashboard_queries",
    "metric_names",
    "promtool",
    "rule_queries",
]

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "config"
PROMETHEUS_DIR = CONFIG / "prometheus"
RULES = PROMETHEUS_DIR / "edge-agent-rules.yml"
RULES_TEST = PROMETHEUS_DIR / "edge-agent-rules.test.yml"
DASHBOARD = CONFIG / "grafana" / "edge-agent.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# Series Prometheus makes itself for every scrape target, not the agent.
PROMETHEUS_OWN = frozenset({"up"})
# The agent's names all start with its prefix; Prometheus' own are matched where a selector follows.
_NAME = re.compile(r"\bedge_agent_[a-z0-9_]+\b|\b(?:" + "|".join(sorted(PROMETHEUS_OWN)) + r")(?=\s*\{)")


def promtool(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool (installed by `make system-deps` from Debian's `prometheus` package)."""
    if not Path(PROMTOOL).exists():
        raise AssertionError("promtool is not installed: `make system-deps` installs Debian's prometheus package")
    return subprocess.run(
        [PROMTOOL, *args], input=input_text, capture_output=True, text=True, timeout=60, check=False, cwd=PROMETHEUS_DIR
    )


def rule_queries() -> dict[str, str]:
    """alert name -> its PromQL expression."""
    doc = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in doc["groups"] for rule in group["rules"]}


def dashboard_queries() -> dict[str, list[str]]:
    """panel title -> its PromQL expressions (the templating variables' queries under their names)."""
    doc = json.loads(DASHBOARD.read_text())
    queries = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in doc["panels"] if p["type"] != "row"}
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            queries[f"${var['name']}"] = [var["definition"]]
    return queries


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out)."""
    label_free = re.sub(r"\{[^}]*\}", "{}", expr)  # label values may look like names
    return set(_NAME.findall(label_free))
