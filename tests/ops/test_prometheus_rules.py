"""The shipped alert rules and dashboard as Prometheus and Grafana read them.

`promtool check rules` and `check config` accept the files; `promtool test rules` runs the unit
tests beside the rules (a camera down for 5 minutes, delivery stalled, broker gone, rate lowered,
storage errors, a session taken over). That every metric they use is one the agent exports is checked against a real
exposition in tests/runtime/test_running_agent.py.
"""

from __future__ import annotations

import json

from tests.ops.prometheus_files import (
    DASHBOARD,
    RULES,
    RULES_TEST,
    dashboard_queries,
    metric_names,
    promtool,
    rule_queries,
)


def test_promtool_accepts_the_rules_and_the_example_config() -> None:
    rules = promtool("check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = promtool("check", "config", "prometheus.example.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_rules_unit_tests_pass() -> None:
    run = promtool("test", "rules", str(RULES_TEST))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_the_rules_a_site_team_needs_are_there() -> None:
    rules = rule_queries()
    for alert in (
        "EdgeAgentCameraDown",
        "EdgeAgentDeliveryStalled",
        "EdgeAgentOutboxGrowing",
        "EdgeAgentBrokerDisconnected",
        "EdgeAgentStorageErrors",
        "EdgeAgentRateLowered",
        "EdgeAgentMqttSessionTakenOver",
    ):
        assert alert in rules
    assert "edge_agent_rate_scale" in metric_names(rules["EdgeAgentRateLowered"])
    unit_tests = RULES_TEST.read_text()
    assert "alertname: EdgeAgentCameraDown" in unit_tests and "alertname: EdgeAgentDeliveryStalled" in unit_tests


def test_every_dashboard_panel_queries_the_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert {v["name"] for v in doc["templating"]["list"]} >= {"datasource", "site", "camera"}
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert metric_names(target["expr"]), f"{panel['title']}: {target['expr']}"
    camera_panels = [p for p in panels if any('camera=~"$camera"' in t["expr"] for t in p["targets"])]
    assert len(camera_panels) >= 5


def test_metric_names_are_read_from_queries() -> None:
    expr = 'histogram_quantile(0.95, sum by (site, le) (rate(edge_agent_alert_delivery_seconds_bucket{site=~"x"}[5m])))'
    assert metric_names(expr) == {"edge_agent_alert_delivery_seconds_bucket"}
    assert metric_names('up{job="edge-agent"} == 0') == {"up"}
    assert metric_names("edge_agent_outbox_depth > 0 and increase(edge_agent_outbox_delivered_total[5m]) == 0") == {
        "edge_agent_outbox_depth",
        "edge_agent_outbox_delivered_total",
    }
    assert all(metric_names(q) for qs in dashboard_queries().values() for q in qs)
