"""The Grafana dashboard (deploy/grafana/livetranslate.json) shows the metrics the pipeline
defines (livetranslate.pipeline.metrics), and only those, from a Prometheus chosen by a variable."""

import json
import re
from pathlib import Path

import pytest

from livetranslate.pipeline import metrics as M

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "livetranslate.json"
# PromQL words that are not metric names (aggregation modifiers, set and comparison operators)
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: its identifiers, less functions (an
    identifier followed by `(`), keywords, label matchers, ranges, strings and numbers."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        name, call = match.groups()
        if not call and name not in KEYWORDS and not re.fullmatch(r"(?i)inf|nan", name):
            names.add(name)
    return names


def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def test_the_expression_parser_finds_metric_names_only():
    expr = (
        'histogram_quantile(0.95, sum by (le, kind) (rate(foo_seconds_bucket{kind="a b", job=~"$job"}'
        "[$__rate_interval]))) / on(instance) group_left max without (pod) (bar) > bool 1e3"
    )
    assert metric_names(expr) == {"foo_seconds_bucket", "bar"}
    assert metric_names("sum(rate(baz_total[5m])) or vector(0)") == {"baz_total"}


def test_the_prometheus_datasource_is_a_variable_every_panel_uses(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == "${datasource}", panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"


def test_every_expression_reads_only_metrics_the_code_defines_and_every_metric_is_shown(dashboard):
    defined = M.series_names()
    shown = set()
    queries = [(p["title"], t["expr"]) for p in panels(dashboard["panels"]) if p["type"] != "row" for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # Grafana's label_values(<series>, <label>)
            series = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
            queries.append((variable["name"], series.group(1) if series else variable["definition"]))
    for title, expr in queries:
        names = metric_names(expr)
        assert names and names <= defined, (title, names - defined)
        shown |= names
    families = {f.name for f in M.FAMILIES}
    assert {name for name in families if not any(s.startswith(name) for s in shown)} == set()


def test_latencies_are_shown_as_quantiles_of_the_histogram(dashboard):
    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    for kind in M.LATENCY_KINDS:
        quantiles = [e for e in exprs if f'kind="{kind.value}"' in e and "histogram_quantile" in e]
        assert any("histogram_quantile(0.5," in e for e in quantiles), kind
        assert any("histogram_quantile(0.95," in e for e in quantiles), kind
        assert all(M.EVENT_LATENCY.name + "_bucket" in e and "by (le)" in e for e in quantiles), kind


def test_panels_have_unique_ids_and_a_place(dashboard):
    ids = [p["id"] for p in panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard["panels"]):
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_deploy_readme_lists_every_metric():
    readme = (DASHBOARD.parents[1] / "README.md").read_text()
    assert [f.name for f in M.FAMILIES if f"`{f.name}" not in readme] == []
