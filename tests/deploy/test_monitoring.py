"""Prometheus config, alert rules and the Grafana dashboard.

promtool checks the files and runs the alert rules' unit tests
(`alerts_test.yml`); the metric names the rules and panels query are checked
against the metrics our code registers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.conftest import PROJECT_ROOT
from tests.deploy.conftest import Run

DEPLOY = PROJECT_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "ai-cv-evaluator.json"

# Series that come from elsewhere: Prometheus itself and Redpanda.
EXTERNAL_METRICS = {"up"}
EXTERNAL_PREFIXES = ("redpanda_",)
PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


def registered_metric_names() -> set[str]:
    import config.metrics  # noqa: F401  (registers the HTTP metrics)
    import evaluations.pipeline.llm  # noqa: F401  (the LLM client's metrics)
    import queueing.metrics  # noqa: F401

    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}{s}" for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', "", expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("("):
            continue  # a function or aggregation
        if match.group().lower() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_metric_name_extraction() -> None:
    assert metric_names(
        "sum by (topic) (max by (topic, partition) (deriv(queue_consumer_lag[10m])))"
        ' > 0 and absent(up{job="worker", instance=~"a.+"} == 1)'
    ) == {"queue_consumer_lag", "up"}


def test_promtool_accepts_the_config_and_the_rules(promtool: Run) -> None:
    result = promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert "SUCCESS" in result.stdout
    result = promtool("check", "rules", str(DEPLOY / "alerts.yml"))
    assert f"{len(alert_rules())} rules found" in result.stdout


def test_alert_rules_fire_when_they_should(promtool: Run) -> None:
    result = promtool("test", "rules", "tests/deploy/alerts_test.yml")
    assert "SUCCESS" in result.stdout


def test_every_alert_is_covered_by_a_unit_test() -> None:
    tests = yaml.safe_load((Path(__file__).parent / "alerts_test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts == tested, f"no firing test for {sorted(alerts - tested)}"


def test_the_migration_record_alerts_exist() -> None:
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {
        "QueueConsumerLagGrowing",
        "QueueJobsFailing",
        "QueueDeadLetters",
        "LLMErrorRateHigh",
        "QueueNoWorkerUp",
    } <= alerts
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_queries_only_use_metrics_that_exist(source: str) -> None:
    expressions = (
        [rule["expr"] for rule in alert_rules()]
        if source == "alerts"
        else dashboard_expressions()
    )
    known = registered_metric_names() | EXTERNAL_METRICS
    used = set().union(*(metric_names(e) for e in expressions))
    assert "queue_consumer_lag" in used
    unknown = {name for name in used - known if not name.startswith(EXTERNAL_PREFIXES)}
    assert not unknown, f"no such metric in the code: {sorted(unknown)}"


def test_dashboard_covers_the_promised_panels_and_is_provisioned() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Queue throughput",
        "Pickup latency (publish to start)",
        "Consumer lag per partition",
        "Failures by code",
        "LLM latency",
    } <= titles
    expressions = " ".join(dashboard_expressions())
    assert "histogram_quantile(0.99, sum by (le) (rate(queue_pickup_latency" in (
        expressions
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))

    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/dashboards.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


def test_prometheus_scrapes_web_workers_and_redpanda() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # By name: Django refuses Host headers outside ALLOWED_HOSTS (an IP).
    assert jobs["web"]["static_configs"][0]["targets"] == ["web:8000"]
    assert jobs["worker"]["dns_sd_configs"][0] == {
        "names": ["worker"],
        "type": "A",
        "port": 9100,
    }
    assert jobs["redpanda"]["metrics_path"] == "/public_metrics"
    assert config["rule_files"] == ["alerts.yml"]
