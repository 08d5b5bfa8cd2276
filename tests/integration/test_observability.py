"""The Grafana dashboard and the alert rules on a real Prometheus scraping the real pipeline.

A second local stack with Prometheus on (so Kafka carries the JMX exporter), the processor, the
sink and the gateway on their own ports, and a demo load through every ingest path: events
straight to Kafka, through the gateway and through a harvester, with duplicates, a rejected
event, a dropped facet and a refused request among them. Then every PromQL expression of
every dashboard panel must return at least one series, and Prometheus must have loaded the
alert rules that promtool checks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lineage.bench.workload import synthetic_events
from tests.conftest import REPO, free_ports, private_ports_env, run_cli
from tests.integration.kafka_io import Worker, group_progress, publish

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "lineage-pipeline.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
RATE_WINDOW = "1m"  # what Grafana's $__rate_interval becomes at a 5 s scrape interval

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="Prometheus is not installed (Debian: apt-get install prometheus; "
           "`make test` installs it through deploy/local/bootstrap.sh --with-prometheus)")


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL) of every target of every panel of the dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["refId"],
             target["expr"].replace("$__rate_interval", RATE_WINDOW))
            for panel in panels if panel["type"] != "row" for target in panel["targets"]]


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - our own loopback URL
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def api(prometheus: str, path: str) -> Any:
    with urllib.request.urlopen(f"{prometheus}{path}", timeout=10) as resp:  # noqa: S310
        return json.load(resp)["data"]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A private stack with Prometheus, and the processor, sink and gateway it scrapes."""
    folder = tmp_path_factory.mktemp("observed")
    gateway_port, processor_metrics, sink_metrics = free_ports(3)
    env = {
        **private_ports_env(folder / "state"),
        "LINEAGE_STACK__KAFKA_HEAP": "512m",
        "LINEAGE_STACK__NEO4J_HEAP": "512m",
        "LINEAGE_STACK__NEO4J_PAGECACHE": "128m",
        "LINEAGE_PROCESSOR__METRICS_PORT": str(processor_metrics),
        "LINEAGE_PROCESSOR__DATA_DIR": str(folder / "processor"),
        "LINEAGE_SINK__METRICS_PORT": str(sink_metrics),
        "LINEAGE_SINK__GAUGE_SECONDS": "2",
        "LINEAGE_GATEWAY__PORT": str(gateway_port),
    }
    up = run_cli("stack", "up", "--with-prometheus", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    services = [Worker(env, folder / f"{name}.log", name)
                for name in ("process", "sink", "gateway")]
    state = Path(env["LINEAGE_STATE_DIR"])
    connection = json.loads((state / "connection.json").read_text())
    try:
        yield {"env": env, "folder": folder, "state": state,
               "prometheus": connection["prometheus"]["url"],
               "bootstrap": connection["kafka"]["bootstrap_servers"],
               "gateway": f"http://127.0.0.1:{gateway_port}", "services": services}
    finally:
        for service in services:
            service.stop()
        run_cli("stack", "down", env=env)


def wait_for(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def play_demo_load(observed: dict[str, Any]) -> None:
    """Events by every ingest path, with the kinds of trouble the dashboard shows."""
    folder, bootstrap = observed["folder"], observed["bootstrap"]
    def gateway_healthy() -> bool:
        try:
            return httpx.get(f"{observed['gateway']}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(gateway_healthy, "the gateway's /healthz")
    events = list(synthetic_events(jobs=20, runs_per_job=2, namespace="observed"))
    direct, via_gateway, harvested = events[0::3], events[1::3], events[2::3]

    # Kafka direct: `lineage emit`, twice (the second time every event is a duplicate), plus a
    # message that is not JSON and an event whose standard facet breaks its schema.
    ndjson = folder / "direct.ndjson"
    ndjson.write_text("".join(json.dumps(e) + "\n" for e in direct))
    for _ in range(2):
        sent = run_cli("emit", str(ndjson), env=observed["env"])
        assert sent.returncode == 0, sent.stderr
    bad_facet = {**direct[0], "run": {**direct[0]["run"], "facets": {"nominalTime": {
        "_producer": "https://example.com", "_schemaURL": "https://openlineage.io/spec/facets/"
        "1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
        "nominalStartTime": "not a time"}}}}
    publish(bootstrap, "openlineage.events",
            [(b"broken", b"{not json"), (b"facet", json.dumps(bad_facet).encode())])

    # The gateway: a batch, and an invalid event it refuses with a 422.
    answer = httpx.post(f"{observed['gateway']}/api/v1/lineage/batch", json=via_gateway,
                        timeout=30)
    assert answer.status_code == 201, answer.text
    refused = httpx.post(f"{observed['gateway']}/api/v1/lineage",
                         json={"eventType": "START"}, timeout=30)
    assert refused.status_code == 422, refused.text

    # A harvester: replaying a folder of files.
    harvest_dir = folder / "harvest"
    harvest_dir.mkdir()
    (harvest_dir / "events.ndjson").write_text("".join(json.dumps(e) + "\n" for e in harvested))
    harvest = run_cli("harvest", "file", str(harvest_dir), env=observed["env"])
    assert harvest.returncode == 0, harvest.stdout + harvest.stderr

    def in_graph() -> bool:
        done, total = group_progress(bootstrap, "openlineage.events", "lineage-processor")
        written, changes = group_progress(bootstrap, "lineage.changes", "lineage-sink")
        return total > 0 and done >= total and changes > 0 and written >= changes

    wait_for(in_graph, "the processor and the sink to commit the whole load", timeout=300)


def test_every_dashboard_panel_has_series_on_a_real_prometheus_scraping_the_pipeline(
    observed: dict[str, Any],
) -> None:
    prometheus = observed["prometheus"]

    def every_target_up() -> bool:
        targets = api(prometheus, "/api/v1/targets")["activeTargets"]
        return {t["labels"]["job"] for t in targets if t["health"] == "up"} >= {
            "kafka", "lineage-processor", "lineage-sink", "lineage-gateway", "prometheus"}

    # Scraped once before the load, so the counters' zeros are recorded and increase() sees
    # the load (a counter first scraped after it looks flat).
    wait_for(every_target_up, "Prometheus to scrape every service")
    play_demo_load(observed)

    queries = dashboard_queries()
    counts: dict[tuple[str, str], int] = {}

    def every_query_has_series() -> bool:
        for title, ref, promql in queries:
            counts[(title, ref)] = len(query(prometheus, promql))
        return all(counts.values())

    # Rates need two scrapes after the load (5 s apart); the graph size a sink refresh.
    try:
        wait_for(every_query_has_series, "every panel query to return a series", timeout=90)
    finally:
        print(f"\n{len(queries)} queries of {len({t for t, _ in counts})} panels:")
        for (title, ref), count in counts.items():
            print(f"  {count:3d} series  {title} [{ref}]")

    # The series carry real traffic, not only the zeros the services create at start (the
    # graph size and the freshness show once the sink refreshed and Prometheus scraped again).
    seen: dict[str, Any] = {}

    def traffic_seen() -> bool:
        seen["paths"] = {r["metric"]["path"]: float(r["value"][1]) for r in query(
            prometheus, "sum by (path) (increase(lineage_processor_events_consumed_total[5m]))")}
        seen["jobs"] = [float(r["value"][1]) for r in query(
            prometheus, 'lineage_sink_graph_nodes{label="Job"}')]
        seen["freshness"] = [float(r["value"][1]) for r in query(
            prometheus, "histogram_quantile(0.99, sum by (le) "
                        "(increase(lineage_sink_arrival_freshness_seconds_bucket[5m])))")]
        return (all(seen["paths"].get(p, 0) > 0 for p in ("kafka", "gateway", "harvest"))
                and bool(seen["jobs"]) and seen["jobs"][0] >= 20
                and bool(seen["freshness"]) and 0 < seen["freshness"][0] < 300)

    try:
        wait_for(traffic_seen, "the load to show in the metrics", timeout=90)
    finally:
        print(f"events by path over 5 min: {seen.get('paths')}; Job nodes: {seen.get('jobs')}; "
              f"freshness p99: {seen.get('freshness')} s")


def test_prometheus_loads_the_alert_rules_and_promtool_accepts_the_configs(
    observed: dict[str, Any],
) -> None:
    groups = api(observed["prometheus"], "/api/v1/rules")["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    written = {line.split(":", 1)[1].strip() for line in ALERTS.read_text().splitlines()
               if line.strip().startswith("- alert:")}
    assert written and loaded == written

    generated = observed["state"] / "prometheus" / "prometheus.yml"
    for args in (["check", "config", str(generated)],
                 ["check", "config", str(REPO / "deploy" / "prometheus" / "prometheus.yml")],
                 ["check", "rules", str(ALERTS)]):
        checked = subprocess.run(["promtool", *args], capture_output=True, text=True,
                                 check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
