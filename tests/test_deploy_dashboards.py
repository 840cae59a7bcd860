"""deploy/: the Grafana dashboard and Prometheus alerts name only series /metrics serves.

Every PromQL expression in both files is taken apart: each metric it selects must be a
series a live Daphne process exposes (after a match, so every family has samples), each
label it groups or filters by must be a label of that metric, and each function must be
a PromQL function. A renamed metric or a typo fails here, not silently on a dashboard.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import BASE_DIR
from tests.support.sse_client import open_stream

DASHBOARD = BASE_DIR / "deploy" / "grafana-dashboard.json"
ALERTS = BASE_DIR / "deploy" / "prometheus-alerts.yml"

FUNCTIONS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "increase",
    "histogram_quantile",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "vector",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
MATCHERS = re.compile(r"\{([^}]*)\}")
IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")


def parse_expression(expr: str) -> tuple[set[str], set[str], set[str]]:
    """The metric names, label names and functions a PromQL expression uses."""
    labels: set[str] = set()
    for group in GROUPING.findall(expr):
        labels.update(name.strip() for name in group.split(",") if name.strip())
    expr = GROUPING.sub(" ", expr)
    for matchers in MATCHERS.findall(expr):
        labels.update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    expr = MATCHERS.sub(" ", expr)
    expr = re.sub(r'"[^"]*"', " ", expr)  # strings, e.g. histogram_quantile's none
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries, Grafana's $__ variables
    metrics, functions = set(), set()
    for name, call in IDENTIFIER.findall(expr):
        if call:
            functions.add(name)
        elif name not in KEYWORDS:
            metrics.add(name)
    return metrics, labels, functions


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_parser_finds_metrics_labels_and_functions():
    metrics, labels, functions = parse_expression(
        'histogram_quantile(0.95, max by (le) (rate(a_bucket{x="1", y!~"z"}[5m]))) > 2 '
        "and min_over_time(max(b)[10m:1m]) >= 2 or vector(0)"
    )
    assert metrics == {"a_bucket", "b"}
    assert labels == {"le", "x", "y"}
    assert functions == {"histogram_quantile", "max", "rate", "min_over_time", "vector"}


def test_dashboard_has_the_operator_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "Time to match (waiting side)",
        "Matches per second",
        "Users waiting",
        "Open streams",
        "Redis errors per second",
        "CPU per process",
        "Memory per process",
    ):
        assert wanted in titles
    quantiles = " ".join(dashboard_expressions())
    assert "histogram_quantile(0.5," in quantiles and "histogram_quantile(0.95," in quantiles


def test_alerts_are_well_formed():
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == {
        "AnimochatRedisErrorsRising",
        "AnimochatSlowMatching",
        "AnimochatNobodyMatched",
    }
    for rule in rules:
        assert rule["expr"].strip() and re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


@pytest.fixture
async def live_series(daphne) -> dict[str, set[str]]:
    """Every series name of a live /metrics, with its label names, after one match."""
    waiting = await open_stream(daphne.url, params={"userId": "dash-a", "interests": "DASH"})
    assert (await waiting.next_event())["state"] == "WAITING"
    arriving = await open_stream(daphne.url, params={"userId": "dash-b", "interests": "DASH"})
    assert (await arriving.next_event())["state"] == "MATCHED"
    assert (await waiting.next_change())["state"] == "MATCHED"
    await waiting.close()
    await arriving.close()
    text = requests.get(daphne.url + "/metrics", timeout=5).text
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


@pytest.mark.parametrize("source", [DASHBOARD.name, ALERTS.name])
def test_every_name_used_exists_in_live_metrics(source, live_series):
    expressions = (
        dashboard_expressions()
        if source == DASHBOARD.name
        else [rule["expr"] for rule in alert_rules()]
    )
    used_metrics: set[str] = set()
    for expr in expressions:
        metrics, labels, functions = parse_expression(expr)
        assert metrics, expr
        assert functions <= FUNCTIONS, (expr, functions - FUNCTIONS)
        known_labels = set().union(*(live_series.get(metric, set()) for metric in metrics))
        assert labels <= known_labels, (expr, labels - known_labels)
        used_metrics |= metrics
    missing = used_metrics - set(live_series)
    assert not missing, f"{Path(source).name} uses series /metrics does not serve: {missing}"
    # The per-process CPU and memory series are served (prometheus-client's collector).
    if source == DASHBOARD.name:
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= used_metrics
    assert "process" in live_series["process_resident_memory_bytes"]
