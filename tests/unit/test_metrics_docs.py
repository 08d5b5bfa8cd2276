"""Every metric the services register is named by the conventions and documented in
docs/metrics.md; the dashboard and the alerts only use metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import lineage.read_api
import producers.gateway.metrics
import sinks.metrics
import stream_processor.metrics
from tests.conftest import REPO

MODULES = (stream_processor.metrics, sinks.metrics, producers.gateway.metrics, lineage.read_api)
BOUNDED_LABELS = {"path", "kind", "reason", "facet", "repair", "group", "partition", "endpoint",
                  "status", "label", "type"}
DOC = REPO / "docs" / "metrics.md"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "lineage-pipeline.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"


def registered() -> dict[str, tuple[str, set[str]]]:
    """Name (counters with _total) -> (type, label names) of every metric the modules declare."""
    found = {}
    for module in MODULES:
        for value in vars(module).values():
            describe = getattr(value, "describe", None)
            if describe is None or not hasattr(value, "_labelnames"):
                continue
            (family,) = describe()
            name = family.name + ("_total" if family.type == "counter" else "")
            found[name] = (family.type, set(value._labelnames))
    return found


def documented() -> dict[str, tuple[str, set[str]]]:
    """The rows of docs/metrics.md's tables with a type column (our services' metrics)."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`lineage_"):
            labels = set(re.findall(r"`(\w+)`", cells[2]))
            rows[cells[0].strip("`")] = (cells[1], labels)
    return rows


def test_every_registered_metric_is_documented_with_its_type_and_labels() -> None:
    ours, docs = registered(), documented()
    assert len(ours) >= 30
    assert sorted(set(ours) - set(docs)) == [], "registered but not in docs/metrics.md"
    assert sorted(set(docs) - set(ours)) == [], "in docs/metrics.md but not registered"
    wrong = {name: (ours[name], docs[name]) for name in ours if ours[name] != docs[name]}
    assert wrong == {}


def test_metric_names_follow_the_conventions_and_labels_are_bounded() -> None:
    for name, (kind, labels) in registered().items():
        service = name.split("_")[1]
        assert name.startswith("lineage_") and service in ("processor", "sink", "gateway"), name
        assert (kind == "counter") == name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith(("_seconds", "_events", "_records")), name
        assert labels <= BOUNDED_LABELS, f"{name} has an unbounded label: {labels}"


def test_every_metric_the_dashboard_and_the_alerts_query_is_one_a_service_serves() -> None:
    ours = set(registered())
    suffixed = ours | {f"{n}_{s}" for n in ours for s in ("bucket", "sum", "count")}
    exprs = [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"]
             for target in panel.get("targets", [])]
    exprs += [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"]
              for rule in group["rules"]]
    named = {m for e in exprs for m in re.findall(r"\blineage_\w+", e)}
    # A regex selector such as lineage_(processor|sink)_consumer_lag_messages names two.
    patterns = {m for e in exprs for m in re.findall(r'__name__=~"([^"]+)"', e)}
    assert named - suffixed == set()
    for pattern in patterns:
        assert [n for n in ours if re.fullmatch(pattern, n)], pattern


@pytest.mark.parametrize("path", sorted(REPO.glob("deploy/grafana/dashboards/*.json")),
                         ids=lambda p: p.name)
def test_the_dashboard_is_valid_grafana_json_with_unique_panel_ids(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel["description"], panel["title"]
