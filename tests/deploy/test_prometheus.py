"""Prometheus' configuration and alert rules, checked and unit-tested by promtool."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.exported import defined_in_source, exported, family_name
from tests.deploy.promql import metric_names
from tests.factories import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
OPERATIONS = ROOT / "docs" / "operations.md"  # the metrics it lists and the runbook


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool (Debian's `prometheus` package; `make test` installs it)."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: run `make test`, or apt-get install prometheus")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


def rules() -> list[dict[str, Any]]:
    """Every alerting rule of alerts.yml."""
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_prometheus_configuration_passes_promtool_check_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = promtool("test", "rules", str(PROMETHEUS / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in rules()} == fired


def test_alerts_cover_what_the_operations_guide_promises() -> None:
    names = {rule["alert"] for rule in rules()}
    assert {
        "ScreeningBacklogTooOld",
        "DeadLettersGrowing",
        "LedgerUnbalanced",
        "IngestServerErrors",
        "IngestBackpressure",
        "ScreeningQueueWithoutWorker",
        "ScreeningNoLiveWorker",
    } <= names


def test_every_alert_names_only_metrics_the_code_exports() -> None:
    for rule in rules():
        named = metric_names(rule["expr"])
        assert named and named <= exported(), (rule["alert"], sorted(named - exported()))


def test_every_alert_has_a_severity_and_links_its_own_runbook_section() -> None:
    runbook = OPERATIONS.read_text().partition("\n## Runbook\n")[2]
    for rule in rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        # GitHub's anchor of a heading that is one alphanumeric word is that word lower-cased.
        assert name.isalnum(), name
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{name.lower()}", name
        assert f"\n### {name}\n" in runbook, name


def test_every_metric_the_code_defines_is_among_the_exported_ones() -> None:
    families = {family_name(name) for name in exported()}
    missing = {name for name in defined_in_source() if family_name(name) not in families}
    assert missing == set()


def test_the_operations_guide_lists_every_exported_metric() -> None:
    guide = OPERATIONS.read_text()
    families = {family_name(name) for name in exported()} - {"up", "scrape_duration_seconds"}
    families -= {"scrape_samples_scraped"}
    missing = sorted(f for f in families if f"`{f}" not in guide)
    assert missing == []
