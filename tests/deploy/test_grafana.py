"""The Grafana dashboards: provisioned, stable, documented, and naming only exported metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.exported import exported
from tests.deploy.promql import grafana_to_promql, metric_names, variable_metric_names
from tests.factories import ROOT
from webapp.routes import ROUTES

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# The dashboards the operations guide promises (docs/operations.md, "Dashboards and alerts").
EXPECTED = {
    "screening-ingestion",
    "screening-pipeline",
    "screening-outcomes",
    "screening-workers",
    "screening-archive",
}
_RANGE_FUNCTIONS = re.compile(r"\b(rate|irate|increase)\s*\(")
_RANGE = re.compile(r"\[([^\]]+)\]")
_ENDPOINT = re.compile(r'endpoint\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"')


def load(path: Path) -> dict[str, Any]:
    """A dashboard file's JSON."""
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested panels included."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [panel for panel in found if panel.get("type") != "row"]


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def test_the_dashboards_exist_with_stable_unique_uids() -> None:
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))
    assert set(uids) >= EXPECTED
    for path in DASHBOARDS:
        dashboard = load(path)
        assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"]), path.name
        assert dashboard["title"] and dashboard.get("id") is None, path.name


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_picks_its_prometheus_through_a_datasource_variable(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_has_a_description_a_unit_and_a_query(path: Path) -> None:
    for panel in panels(load(path)):
        assert panel.get("description", "").strip(), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert panel.get("targets"), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_rate_is_taken_over_the_rate_interval(path: Path) -> None:
    for title, expr in queries(load(path)):
        if _RANGE_FUNCTIONS.search(expr):
            ranges = set(_RANGE.findall(expr))
            assert ranges == {"$__rate_interval"}, (title, expr)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_parses_and_names_only_metrics_the_code_exports(path: Path) -> None:
    dashboard = load(path)
    named: set[str] = set()
    for title, expr in queries(dashboard):
        try:
            named |= metric_names(grafana_to_promql(expr))
        except ValueError as exc:
            pytest.fail(f"{path.name}: {title}: {exc}")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            named |= variable_metric_names(variable["query"]["query"])
    assert named and named <= exported(), sorted(named - exported())


def test_provisioning_loads_the_dashboards_folder_and_the_compose_prometheus() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/screening.yml").read_text())
    [entry] = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_endpoint_label_a_query_matches_names_a_route(path: Path) -> None:
    endpoints = {route.endpoint for route in ROUTES}
    for title, expr in queries(load(path)):
        for operator, literal in _ENDPOINT.findall(expr):
            value = literal.replace("\\\\", "\\")  # PromQL's string escape
            if operator == "=~":
                matched = {e for e in endpoints if re.fullmatch(value, e)}
            else:
                matched = endpoints & {value}
            assert matched, (title, value)
