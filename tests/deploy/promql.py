"""PromQL as dashboards and alert rules write it, parsed with promql-parser."""

from __future__ import annotations

import re

import promql_parser

# Grafana's variables, replaced by values of the right type before parsing.
_GRAFANA = [
    (re.compile(r"\$__(rate_)?interval|\$__range"), "5m"),
    (re.compile(r"\$\{?[A-Za-z_]\w*(:\w+)?\}?"), "x"),
]
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def grafana_to_promql(expr: str) -> str:
    """A Grafana panel's query with its variables replaced, ready to parse."""
    for pattern, value in _GRAFANA:
        expr = pattern.sub(value, expr)
    return expr


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects (ValueError when it does not parse)."""
    tree = promql_parser.parse(expr)
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next(
                (m.value for m in node.matchers.matchers if m.name == "__name__"), None
            )
            if name is None:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            names.add(name)

    promql_parser.walk(tree, visit)
    return names


def variable_metric_names(query: str) -> set[str]:
    """Metric names a Grafana variable query (label_values(...) or PromQL) selects."""
    match = _LABEL_VALUES.match(query.strip())
    if match:
        selector = match.group("selector")
        return metric_names(grafana_to_promql(selector)) if selector else set()
    return metric_names(grafana_to_promql(query))
