"""A small lineage graph whose every answer is known, as hand-written OpenLineage events.

::

    raw.customers ─┐ (dedupe_customers reads and rewrites raw.customers: a cycle)
                   ├─> build_revenue ─> mart.revenue ─> publish_dashboard ─> report.dashboard
    raw.orders ─> stage_orders ─> staging.orders ─┘                          (FAIL; nobody reads it)
    raw.regions ─┘ (only from version 2 of stage_orders, on day 2)

- ``stage_orders`` changes its SQL and its inputs on day 2: two job versions. The schema of
  ``staging.orders`` changes with it: ``note`` removed, ``region`` added, ``amount`` retyped.
- ``build_revenue`` fails once (run b1, no schema on the FAIL event: no dataset version) and then
  completes (b2).
- ``publish_dashboard`` fails (run c) and nothing repairs ``report.dashboard`` afterwards.
- Day 1's runs are children of one run of the scheduler job ``daily`` (the parent facet).
- ``raw.orders`` has a symlink alias ``warehouse.orders``; nothing reads the alias by that name.
- Column lineage: ``raw.orders.amount -> staging.orders.amount -> mart.revenue.total ->
  report.dashboard.total``, ``raw.customers.name -> mart.revenue.customer_name``, ...
- Inputs carry no schema facet: an input with a schema makes a dataset version of its own (its
  id hashes no producing run), which would add versions to the histories below.

Below the events: :class:`Known` (the loaded graph's ids) and the answer of every cookbook recipe
for it, worked out by hand from the events (:func:`cases_of`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neo4j import Driver, ManagedTransaction

PRODUCER = "https://github.com/openlineage-stream/tests"
RUN_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"

SQL_V1 = "INSERT INTO staging.orders SELECT id, amount, customer, note FROM raw.orders"
SQL_V2 = ("INSERT INTO staging.orders SELECT o.id, CAST(o.amount AS decimal(18,2)), o.customer, "
          "r.region FROM raw.orders o JOIN raw.regions r ON o.region_id = r.id")
SQL_REVENUE = ("INSERT INTO mart.revenue SELECT c.name, sum(o.amount) FROM staging.orders o "
               "JOIN raw.customers c ON o.customer = c.id GROUP BY c.name")
SQL_DASHBOARD = "INSERT INTO report.dashboard SELECT total FROM mart.revenue"
SQL_DEDUPE = "INSERT OVERWRITE raw.customers SELECT DISTINCT id, name FROM raw.customers"

STAGING_V1 = [("id", "bigint"), ("amount", "double"), ("customer", "string"), ("note", "string")]
STAGING_V2 = [("id", "bigint"), ("amount", "decimal(18,2)"), ("customer", "string"),
              ("region", "string")]
REVENUE = [("customer_name", "string"), ("total", "decimal(18,2)")]
DASHBOARD = [("total", "decimal(18,2)")]
CUSTOMERS = [("id", "bigint"), ("name", "string")]


def at(text: str) -> datetime:
    """An event time of the known graph, e.g. ``at("2024-03-01T01:00:00Z")``."""
    return datetime.fromisoformat(text)


@dataclass
class KnownGraph:
    """The events of the known graph in ``namespace``, with fresh run ids."""

    namespace: str
    runs: dict[str, str] = field(default_factory=lambda: {
        name: str(uuid.uuid4()) for name in ("daily", "a", "d", "e", "b1", "b2", "c")})

    def _facet(self, spec: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"_producer": PRODUCER,
                "_schemaURL": f"https://openlineage.io/spec/facets/{spec}", **body}

    def ref(self, name: str, **facets: Any) -> dict[str, Any]:
        """A dataset of the namespace, with the facets given."""
        return {"namespace": self.namespace, "name": name, **({"facets": facets} if facets
                                                               else {})}

    def schema(self, columns: list[tuple[str, str]]) -> dict[str, Any]:
        return self._facet("1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
                           {"fields": [{"name": n, "type": t} for n, t in columns]})

    def lineage(self, columns: dict[str, list[tuple[str, str, str]]]) -> dict[str, Any]:
        """``{target column: [(source dataset, source column, "TYPE/SUBTYPE"), ...]}``."""
        fields = {}
        for target, sources in columns.items():
            fields[target] = {"inputFields": [
                {"namespace": self.namespace, "name": dataset, "field": column,
                 "transformations": [{"type": kind.split("/")[0], "subtype": kind.split("/")[1]}]}
                for dataset, column, kind in sources]}
        return self._facet(
            "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
            {"fields": fields})

    def raw_orders(self) -> dict[str, Any]:
        return self.ref("raw.orders", symlinks=self._facet(
            "1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet",
            {"identifiers": [{"namespace": self.namespace, "name": "warehouse.orders",
                              "type": "TABLE"}]}))

    def event(self, kind: str, time: str, job: str, run: str, *, sql: str | None = None,
              inputs: list[dict[str, Any]] | None = None,
              outputs: list[dict[str, Any]] | None = None,
              parent: bool = True) -> dict[str, Any]:
        """One run event; ``run`` names a run of :attr:`runs`."""
        run_facets: dict[str, Any] = {}
        if parent:
            run_facets["parent"] = self._facet(
                "1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
                {"run": {"runId": self.runs["daily"]},
                 "job": {"namespace": self.namespace, "name": "daily"}})
        job_facets = {"sql": self._facet("1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
                                         {"query": sql})} if sql else {}
        return {"eventType": kind, "eventTime": time, "producer": PRODUCER,
                "schemaURL": RUN_SCHEMA_URL,
                "run": {"runId": self.runs[run], "facets": run_facets},
                "job": {"namespace": self.namespace, "name": job, "facets": job_facets},
                "inputs": inputs or [], "outputs": outputs or []}

    def events(self) -> list[dict[str, Any]]:
        """Every event of the known graph, in time order."""
        r = self.ref
        staging_v1 = r("staging.orders", schema=self.schema(STAGING_V1), columnLineage=(
            self.lineage({"id": [("raw.orders", "id", "DIRECT/IDENTITY")],
                          "amount": [("raw.orders", "amount", "DIRECT/TRANSFORMATION")],
                          "customer": [("raw.orders", "customer", "DIRECT/IDENTITY")],
                          "note": [("raw.orders", "note", "DIRECT/IDENTITY")]})))
        staging_v2 = r("staging.orders", schema=self.schema(STAGING_V2), columnLineage=(
            self.lineage({"id": [("raw.orders", "id", "DIRECT/IDENTITY")],
                          "amount": [("raw.orders", "amount", "DIRECT/TRANSFORMATION")],
                          "customer": [("raw.orders", "customer", "DIRECT/IDENTITY")],
                          "region": [("raw.regions", "region", "DIRECT/IDENTITY")]})))
        revenue = r("mart.revenue", schema=self.schema(REVENUE), columnLineage=self.lineage({
            "customer_name": [("raw.customers", "name", "DIRECT/IDENTITY")],
            "total": [("staging.orders", "amount", "DIRECT/AGGREGATION")]}))
        dashboard = r("report.dashboard", schema=self.schema(DASHBOARD),
                      columnLineage=self.lineage({
                          "total": [("mart.revenue", "total", "DIRECT/IDENTITY")]}))
        revenue_in = [r("raw.customers"), r("staging.orders")]
        return [
            self.event("START", "2024-03-01T00:00:00Z", "daily", "daily", parent=False),
            self.event("START", "2024-03-01T00:30:00Z", "dedupe_customers", "e", sql=SQL_DEDUPE,
                       inputs=[r("raw.customers")], outputs=[r("raw.customers")]),
            self.event("COMPLETE", "2024-03-01T00:31:00Z", "dedupe_customers", "e",
                       sql=SQL_DEDUPE, inputs=[r("raw.customers")],
                       outputs=[r("raw.customers", schema=self.schema(CUSTOMERS))]),
            self.event("START", "2024-03-01T01:00:00Z", "stage_orders", "a", sql=SQL_V1,
                       inputs=[self.raw_orders()], outputs=[r("staging.orders")]),
            self.event("COMPLETE", "2024-03-01T01:05:00Z", "stage_orders", "a", sql=SQL_V1,
                       inputs=[self.raw_orders()], outputs=[staging_v1]),
            self.event("START", "2024-03-01T02:00:00Z", "build_revenue", "b1", sql=SQL_REVENUE,
                       inputs=revenue_in, outputs=[r("mart.revenue")]),
            self.event("FAIL", "2024-03-01T02:01:00Z", "build_revenue", "b1", sql=SQL_REVENUE,
                       inputs=revenue_in, outputs=[r("mart.revenue")]),
            self.event("START", "2024-03-01T02:30:00Z", "build_revenue", "b2", sql=SQL_REVENUE,
                       inputs=revenue_in, outputs=[r("mart.revenue")]),
            self.event("COMPLETE", "2024-03-01T02:40:00.250Z", "build_revenue", "b2",
                       sql=SQL_REVENUE, inputs=revenue_in, outputs=[revenue]),
            self.event("START", "2024-03-01T03:00:00Z", "publish_dashboard", "c",
                       sql=SQL_DASHBOARD, inputs=[r("mart.revenue")],
                       outputs=[r("report.dashboard")]),
            self.event("FAIL", "2024-03-01T03:01:00Z", "publish_dashboard", "c",
                       sql=SQL_DASHBOARD, inputs=[r("mart.revenue")], outputs=[dashboard]),
            self.event("COMPLETE", "2024-03-01T04:00:00Z", "daily", "daily", parent=False),
            self.event("START", "2024-03-02T01:00:00Z", "stage_orders", "d", sql=SQL_V2,
                       inputs=[self.raw_orders(), r("raw.regions")],
                       outputs=[r("staging.orders")], parent=False),
            self.event("COMPLETE", "2024-03-02T01:07:30Z", "stage_orders", "d", sql=SQL_V2,
                       inputs=[self.raw_orders(), r("raw.regions")], outputs=[staging_v2],
                       parent=False),
        ]


# --- the loaded graph, and the answers worked out from its events ------------------------------

@dataclass(frozen=True)
class Known:
    """The loaded known graph: its namespace, run ids and the version ids Neo4j holds."""

    ns: str
    runs: dict[str, str]
    versions: dict[str, str]

    def ref(self, name: str) -> dict[str, str]:
        return {"namespace": self.ns, "name": name}


def read(driver: Driver, statement: str, **parameters: Any) -> list[dict[str, Any]]:
    """A statement's records in a read transaction (a recipe that writes would fail here)."""
    def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
        return [record.data() for record in tx.run(statement, parameters)]

    with driver.session() as session:
        return session.execute_read(work)


def version_ids(driver: Driver, graph: KnownGraph) -> dict[str, str]:
    """The ids of the versions, found by what they are (not by recomputing the hashes)."""
    written = {"staging_a": ("a", "staging.orders"), "staging_d": ("d", "staging.orders"),
               "revenue_b2": ("b2", "mart.revenue"),
               "dashboard_c": ("c", "report.dashboard"), "customers_e": ("e", "raw.customers")}
    ids = {}
    for key, (run, dataset) in written.items():
        [row] = read(driver, "MATCH (:Run {runId: $run})-[:WROTE]->(v:DatasetVersion) "
                             "<-[:HAS_VERSION]-(:Dataset {namespace: $ns, name: $name}) "
                             "RETURN v.id AS id", run=graph.runs[run], ns=graph.namespace,
                     name=dataset)
        ids[key] = row["id"]
    for key, (job, sql) in {"stage_v1": ("stage_orders", SQL_V1),
                            "stage_v2": ("stage_orders", SQL_V2),
                            "revenue_job": ("build_revenue", SQL_REVENUE),
                            "dashboard_job": ("publish_dashboard", SQL_DASHBOARD),
                            "dedupe_job": ("dedupe_customers", SQL_DEDUPE)}.items():
        [row] = read(driver, "MATCH (:Job {namespace: $ns, name: $job})-[:HAS_VERSION]->"
                             "(v:JobVersion {sql: $sql}) RETURN v.id AS id",
                     ns=graph.namespace, job=job, sql=sql)
        ids[key] = row["id"]
    assert len(set(ids.values())) == len(ids)
    return ids


Case = tuple[dict[str, Any], list[dict[str, Any]]]


def node(k: Known, hops: int, kind: str, name: str, *via: str) -> dict[str, Any]:
    return {"hops": hops, "kind": kind, "namespace": k.ns, "name": name,
            "via": [k.ref(v) for v in via]}


def column(k: Known, hops: int, dataset: str, field: str,
           *via: tuple[str, str, str]) -> dict[str, Any]:
    return {"hops": hops, "namespace": k.ns, "dataset": dataset, "field": field,
            "via": [{"namespace": k.ns, "dataset": d, "field": f, "transformations": [t]}
                    for d, f, t in via]}


def as_of(k: Known, hops: int, kind: str, name: str, version: str | None = None,
          valid: tuple[str, str | None] | None = None, sql: str | None = None) -> dict[str, Any]:
    return {"hops": hops, "kind": kind, "namespace": k.ns, "name": name,
            "version": k.versions[version] if version else None,
            "validFrom": valid[0] if valid else None, "validTo": valid[1] if valid else None,
            "sql": sql}


#: "Now" for the known graph, whose events are all in March 2024, and noon of its first day.
NOW = at("2030-01-01T00:00:00Z")
DAY1 = at("2024-03-01T12:00:00Z")


def lineage_cases(k: Known) -> dict[str, list[Case]]:
    ns = k.ns
    revenue_upstream_1 = [node(k, 1, "Job", "build_revenue", "mart.revenue"),
                          node(k, 1, "Dataset", "raw.customers", "build_revenue"),
                          node(k, 1, "Dataset", "staging.orders", "build_revenue")]
    orders_downstream_2 = [node(k, 1, "Job", "stage_orders", "raw.orders"),
                           node(k, 1, "Dataset", "staging.orders", "stage_orders"),
                           node(k, 2, "Job", "build_revenue", "staging.orders"),
                           node(k, 2, "Dataset", "mart.revenue", "build_revenue")]
    return {
        "DATASET_UPSTREAM": [
            ({"namespace": ns, "name": "mart.revenue", "hops": 1, "asOf": NOW}, revenue_upstream_1),
            ({"namespace": ns, "name": "mart.revenue", "hops": 2, "asOf": NOW}, [
                *revenue_upstream_1,
                node(k, 2, "Job", "dedupe_customers", "raw.customers"),
                node(k, 2, "Job", "stage_orders", "staging.orders"),
                node(k, 2, "Dataset", "raw.orders", "stage_orders"),
                node(k, 2, "Dataset", "raw.regions", "stage_orders")]),
            ({"namespace": ns, "name": "raw.orders", "hops": 5, "asOf": NOW}, []),
        ],
        "DATASET_DOWNSTREAM": [
            ({"namespace": ns, "name": "raw.orders", "hops": 2, "asOf": NOW}, orders_downstream_2),
            ({"namespace": ns, "name": "raw.orders", "hops": 20, "asOf": NOW}, [
                *orders_downstream_2,
                node(k, 3, "Job", "publish_dashboard", "mart.revenue"),
                node(k, 3, "Dataset", "report.dashboard", "publish_dashboard")]),
            ({"namespace": ns, "name": "report.dashboard", "hops": 3, "asOf": NOW}, []),
        ],
        "JOB_UPSTREAM": [
            ({"namespace": ns, "name": "build_revenue", "hops": 1, "asOf": NOW}, [
                node(k, 1, "Dataset", "raw.customers", "build_revenue"),
                node(k, 1, "Dataset", "staging.orders", "build_revenue"),
                node(k, 1, "Job", "dedupe_customers", "raw.customers"),
                node(k, 1, "Job", "stage_orders", "staging.orders")]),
            # It reads what it writes: the cycle does not list the job itself.
            ({"namespace": ns, "name": "dedupe_customers", "hops": 5, "asOf": NOW}, [
                node(k, 1, "Dataset", "raw.customers", "dedupe_customers")]),
        ],
        "JOB_DOWNSTREAM": [
            ({"namespace": ns, "name": "stage_orders", "hops": 1, "asOf": NOW}, [
                node(k, 1, "Dataset", "staging.orders", "stage_orders"),
                node(k, 1, "Job", "build_revenue", "staging.orders")]),
            ({"namespace": ns, "name": "stage_orders", "hops": 2, "asOf": NOW}, [
                node(k, 1, "Dataset", "staging.orders", "stage_orders"),
                node(k, 1, "Job", "build_revenue", "staging.orders"),
                node(k, 2, "Dataset", "mart.revenue", "build_revenue"),
                node(k, 2, "Job", "publish_dashboard", "mart.revenue")]),
        ],
        "DATASET_IMPACT": [
            ({"namespace": ns, "name": "raw.customers", "asOf": NOW}, [
                {"hops": 1, "kind": "Job", "namespace": ns, "name": "build_revenue"},
                {"hops": 1, "kind": "Job", "namespace": ns, "name": "dedupe_customers"},
                {"hops": 1, "kind": "Dataset", "namespace": ns, "name": "mart.revenue"},
                {"hops": 2, "kind": "Job", "namespace": ns, "name": "publish_dashboard"},
                {"hops": 2, "kind": "Dataset", "namespace": ns, "name": "report.dashboard"}]),
            ({"namespace": ns, "name": "report.dashboard", "asOf": NOW}, []),
        ],
        "FIELD_IMPACT": [
            ({"namespace": ns, "dataset": "raw.orders", "field": "amount", "asOf": NOW}, [
                {"hops": 1, "namespace": ns, "dataset": "staging.orders", "field": "amount"},
                {"hops": 2, "namespace": ns, "dataset": "mart.revenue", "field": "total"},
                {"hops": 3, "namespace": ns, "dataset": "report.dashboard", "field": "total"}]),
            # Only day 1's version of stage_orders carried note: as of day 1 (now: see below).
            ({"namespace": ns, "dataset": "raw.orders", "field": "note", "asOf": DAY1}, [
                {"hops": 1, "namespace": ns, "dataset": "staging.orders", "field": "note"}]),
        ],
        "FIELD_UPSTREAM": [
            ({"namespace": ns, "dataset": "report.dashboard", "field": "total", "asOf": NOW}, [
                column(k, 1, "mart.revenue", "total",
                       ("report.dashboard", "total", "DIRECT/IDENTITY")),
                column(k, 2, "staging.orders", "amount",
                       ("mart.revenue", "total", "DIRECT/AGGREGATION")),
                column(k, 3, "raw.orders", "amount",
                       ("staging.orders", "amount", "DIRECT/TRANSFORMATION"))]),
            ({"namespace": ns, "dataset": "raw.orders", "field": "amount", "asOf": NOW}, []),
        ],
        "FIELD_DOWNSTREAM": [
            ({"namespace": ns, "dataset": "raw.orders", "field": "amount", "asOf": NOW}, [
                column(k, 1, "staging.orders", "amount",
                       ("raw.orders", "amount", "DIRECT/TRANSFORMATION")),
                column(k, 2, "mart.revenue", "total",
                       ("staging.orders", "amount", "DIRECT/AGGREGATION")),
                column(k, 3, "report.dashboard", "total",
                       ("mart.revenue", "total", "DIRECT/IDENTITY"))]),
        ],
    }


def ever_cases(k: Known) -> dict[str, list[Case]]:
    """The lineage recipes as of a past time, and "ever": every pair observed."""
    ns, day1 = k.ns, at("2024-03-01T12:00:00Z")
    now = lineage_cases(k)
    ever: dict[str, list[Case]] = {}
    for name in ("DATASET_UPSTREAM", "DATASET_DOWNSTREAM", "JOB_UPSTREAM", "JOB_DOWNSTREAM",
                 "DATASET_IMPACT", "FIELD_IMPACT", "FIELD_UPSTREAM", "FIELD_DOWNSTREAM"):
        # Every pair of the known graph is still valid now: ever and now agree.
        ever[f"{name}_EVER"] = [({key: v for key, v in params.items() if key != "asOf"}, rows)
                                for params, rows in now[name]]
    return {
        **ever,
        # On day 1 stage_orders (version 1) did not read raw.regions yet.
        "JOB_UPSTREAM": [
            ({"namespace": ns, "name": "stage_orders", "hops": 1, "asOf": day1}, [
                node(k, 1, "Dataset", "raw.orders", "stage_orders")]),
            ({"namespace": ns, "name": "stage_orders", "hops": 1, "asOf": NOW}, [
                node(k, 1, "Dataset", "raw.orders", "stage_orders"),
                node(k, 1, "Dataset", "raw.regions", "stage_orders")]),
            # Before its first run a job has no version, so no lineage as of then.
            ({"namespace": ns, "name": "stage_orders", "hops": 1,
              "asOf": at("2024-03-01T00:59:00Z")}, []),
        ],
        "DATASET_IMPACT": [
            ({"namespace": ns, "name": "raw.regions", "asOf": day1}, []),
        ],
        # stage_orders dropped the note column on day 2: its impact now is nothing.
        "FIELD_IMPACT": [
            ({"namespace": ns, "dataset": "raw.orders", "field": "note", "asOf": NOW}, []),
        ],
        "DATASET_IMPACT_EVER": [
            ({"namespace": ns, "name": "raw.regions"}, [
                {"hops": 1, "kind": "Job", "namespace": ns, "name": "stage_orders"},
                {"hops": 1, "kind": "Dataset", "namespace": ns, "name": "staging.orders"},
                {"hops": 2, "kind": "Job", "namespace": ns, "name": "build_revenue"},
                {"hops": 2, "kind": "Dataset", "namespace": ns, "name": "mart.revenue"},
                {"hops": 3, "kind": "Job", "namespace": ns, "name": "publish_dashboard"},
                {"hops": 3, "kind": "Dataset", "namespace": ns, "name": "report.dashboard"}]),
        ],
    }


def as_of_cases(k: Known) -> dict[str, list[Case]]:
    ns = k.ns
    day1, day3 = at("2024-03-01T12:00:00Z"), at("2024-03-03T00:00:00Z")
    v1 = ("2024-03-01T01:00:00Z", "2024-03-02T01:00:00Z")
    v2 = ("2024-03-02T01:00:00Z", None)
    return {
        "AS_OF_UPSTREAM": [
            # On day 1 stage_orders was version 1: it did not read raw.regions yet.
            ({"namespace": ns, "name": "mart.revenue", "asOf": day1, "hops": 2}, [
                as_of(k, 1, "Job", "build_revenue", "revenue_job",
                      ("2024-03-01T02:00:00Z", None), SQL_REVENUE),
                as_of(k, 1, "Dataset", "raw.customers"),
                as_of(k, 1, "Dataset", "staging.orders"),
                as_of(k, 2, "Job", "dedupe_customers", "dedupe_job",
                      ("2024-03-01T00:30:00Z", None), SQL_DEDUPE),
                as_of(k, 2, "Job", "stage_orders", "stage_v1", v1, SQL_V1),
                as_of(k, 2, "Dataset", "raw.orders")]),
            # At the very start of version 2, version 2 is the one valid.
            ({"namespace": ns, "name": "staging.orders", "asOf": at("2024-03-02T01:00:00Z"),
              "hops": 1}, [
                as_of(k, 1, "Job", "stage_orders", "stage_v2", v2, SQL_V2),
                as_of(k, 1, "Dataset", "raw.orders"),
                as_of(k, 1, "Dataset", "raw.regions")]),
            ({"namespace": ns, "name": "staging.orders", "asOf": at("2024-03-02T00:59:59Z"),
              "hops": 1}, [
                as_of(k, 1, "Job", "stage_orders", "stage_v1", v1, SQL_V1),
                as_of(k, 1, "Dataset", "raw.orders")]),
            # Before build_revenue existed nothing produced mart.revenue.
            ({"namespace": ns, "name": "mart.revenue", "asOf": at("2024-03-01T00:45:00Z"),
              "hops": 3}, []),
        ],
        "AS_OF_DOWNSTREAM": [
            ({"namespace": ns, "name": "raw.regions", "asOf": day1, "hops": 3}, []),
            ({"namespace": ns, "name": "raw.regions", "asOf": day3, "hops": 1}, [
                as_of(k, 1, "Job", "stage_orders", "stage_v2", v2, SQL_V2),
                as_of(k, 1, "Dataset", "staging.orders")]),
            ({"namespace": ns, "name": "raw.orders", "asOf": day1, "hops": 3}, [
                as_of(k, 1, "Job", "stage_orders", "stage_v1", v1, SQL_V1),
                as_of(k, 1, "Dataset", "staging.orders"),
                as_of(k, 2, "Job", "build_revenue", "revenue_job",
                      ("2024-03-01T02:00:00Z", None), SQL_REVENUE),
                as_of(k, 2, "Dataset", "mart.revenue"),
                as_of(k, 3, "Job", "publish_dashboard", "dashboard_job",
                      ("2024-03-01T03:00:00Z", None), SQL_DASHBOARD),
                as_of(k, 3, "Dataset", "report.dashboard")]),
        ],
    }


def history_cases(k: Known) -> dict[str, list[Case]]:
    ns, v, runs = k.ns, k.versions, k.runs
    staging_a = {"version": v["staging_a"], "validFrom": "2024-03-01T01:05:00Z",
                 "validTo": "2024-03-02T01:07:30Z",
                 "writtenBy": [{"runId": runs["a"], "state": "COMPLETE"}],
                 "fields": ["id", "amount", "customer", "note"],
                 "added": ["id", "amount", "customer", "note"], "removed": [], "retyped": []}
    staging_d = {"version": v["staging_d"], "validFrom": "2024-03-02T01:07:30Z",
                 "validTo": None, "writtenBy": [{"runId": runs["d"], "state": "COMPLETE"}],
                 "fields": ["id", "amount", "customer", "region"], "added": ["region"],
                 "removed": ["note"],
                 "retyped": [{"field": "amount", "before": "double", "after": "decimal(18,2)"}]}
    stage_v1 = {"version": v["stage_v1"], "validFrom": "2024-03-01T01:00:00Z",
                "validTo": "2024-03-02T01:00:00Z", "sql": SQL_V1,
                "reads": [k.ref("raw.orders")], "writes": [k.ref("staging.orders")], "runs": 1}
    stage_v2 = {"version": v["stage_v2"], "validFrom": "2024-03-02T01:00:00Z", "validTo": None,
                "sql": SQL_V2, "reads": [k.ref("raw.orders"), k.ref("raw.regions")],
                "writes": [k.ref("staging.orders")], "runs": 1}
    from_a = {"id": v["staging_a"], "namespace": ns, "name": "staging.orders",
              "validFrom": "2024-03-01T01:05:00Z"}
    to_d = {"id": v["staging_d"], "namespace": ns, "name": "staging.orders",
            "validFrom": "2024-03-02T01:07:30Z"}
    job_v1 = {"id": v["stage_v1"], "jobNamespace": ns, "jobName": "stage_orders",
              "validFrom": "2024-03-01T01:00:00Z"}
    job_v2 = {"id": v["stage_v2"], "jobNamespace": ns, "jobName": "stage_orders",
              "validFrom": "2024-03-02T01:00:00Z"}
    return {
        "DATASET_HISTORY": [
            ({"namespace": ns, "name": "staging.orders"}, [staging_a, staging_d]),
            # The failed run's output had no schema: it makes no version (only a COMPLETE does).
            ({"namespace": ns, "name": "mart.revenue"}, [
                {"version": v["revenue_b2"], "validFrom": "2024-03-01T02:40:00.250Z",
                 "validTo": None, "writtenBy": [{"runId": runs["b2"], "state": "COMPLETE"}],
                 "fields": ["customer_name", "total"], "added": ["customer_name", "total"],
                 "removed": [], "retyped": []}]),
            ({"namespace": ns, "name": "raw.orders"}, []),
        ],
        "JOB_HISTORY": [
            ({"namespace": ns, "name": "stage_orders"}, [stage_v1, stage_v2]),
        ],
        "DATASET_SCHEMA": [
            ({"namespace": ns, "name": "staging.orders", "asOf": at(when)}, [
                {"field": f, "type": t, "description": None, "version": version["version"],
                 "validFrom": version["validFrom"], "validTo": version["validTo"]}
                for f, t in columns])
            for when, version, columns in (
                ("2024-03-02T01:07:29Z", staging_a, STAGING_V1),
                ("2024-03-02T01:07:30Z", staging_d, STAGING_V2),
                ("2024-03-01T01:04:59Z", {}, []))
        ],
        "DATASET_VERSION_DIFF": [
            ({"from": v["staging_a"], "to": v["staging_d"]}, [
                {"fromVersion": from_a, "toVersion": to_d, "added": ["region"],
                 "removed": ["note"],
                 "retyped": [{"field": "amount", "before": "double",
                              "after": "decimal(18,2)"}]}]),
            ({"from": v["staging_d"], "to": v["staging_a"]}, [
                {"fromVersion": to_d, "toVersion": from_a, "added": ["note"],
                 "removed": ["region"],
                 "retyped": [{"field": "amount", "before": "decimal(18,2)",
                              "after": "double"}]}]),
            ({"from": v["staging_a"], "to": v["stage_v2"]}, []),
        ],
        "JOB_VERSION_DIFF": [
            ({"from": v["stage_v1"], "to": v["stage_v2"]}, [
                {"fromVersion": job_v1, "toVersion": job_v2, "sqlBefore": SQL_V1,
                 "sqlAfter": SQL_V2, "readsAdded": [k.ref("raw.regions")], "readsRemoved": [],
                 "writesAdded": [], "writesRemoved": []}]),
            ({"from": v["staging_a"], "to": v["staging_d"]}, []),
        ],
    }


def runs_cases(k: Known) -> dict[str, list[Case]]:
    ns, runs = k.ns, k.runs
    parent = {"runId": runs["daily"], "jobNamespace": ns, "job": "daily"}
    b2 = {"runId": runs["b2"], "state": "COMPLETE", "startedAt": "2024-03-01T02:30:00Z",
          "endedAt": "2024-03-01T02:40:00.250Z", "seconds": 600.25,
          "versions": [k.versions["revenue_job"]], "parent": parent}
    b1 = {"runId": runs["b1"], "state": "FAIL", "startedAt": "2024-03-01T02:00:00Z",
          "endedAt": "2024-03-01T02:01:00Z", "seconds": 60.0,
          "versions": [k.versions["revenue_job"]], "parent": parent}
    return {
        "JOB_RUNS": [
            ({"namespace": ns, "name": "build_revenue", "limit": 10}, [b2, b1]),
            ({"namespace": ns, "name": "build_revenue", "limit": 1}, [b2]),
            ({"namespace": ns, "name": "daily", "limit": 10}, [
                {"runId": runs["daily"], "state": "COMPLETE",
                 "startedAt": "2024-03-01T00:00:00Z", "endedAt": "2024-03-01T04:00:00Z",
                 "seconds": 14400.0, "versions": [], "parent": None}]),
        ],
        "FAILED_RUN_OUTPUTS": [
            ({"namespace": ns}, [
                {"dataset": "report.dashboard", "jobNamespace": ns, "job": "publish_dashboard",
                 "runId": runs["c"], "failedAt": "2024-03-01T03:01:00Z",
                 "rewrittenSince": False},
                {"dataset": "mart.revenue", "jobNamespace": ns, "job": "build_revenue",
                 "runId": runs["b1"], "failedAt": "2024-03-01T02:01:00Z",
                 "rewrittenSince": True}]),
        ],
    }


def housekeeping_cases(k: Known) -> dict[str, list[Case]]:
    ns = k.ns

    def flow(source: str, target: str, *jobs: str) -> dict[str, Any]:
        return {"sourceNamespace": ns, "source": source, "targetNamespace": ns,
                "target": target, "jobs": list(jobs)}

    return {
        # warehouse.orders, the alias of raw.orders, is not listed: it is a name, not a dataset.
        "UNREAD_DATASETS": [
            ({"namespace": ns}, [
                {"dataset": "report.dashboard", "writtenBy": [k.ref("publish_dashboard")],
                 "lastWritten": "2024-03-01T03:01:00Z"}]),
        ],
        "DATASET_FLOW": [
            ({"namespace": ns}, [
                flow("mart.revenue", "report.dashboard", "publish_dashboard"),
                flow("raw.customers", "mart.revenue", "build_revenue"),
                flow("raw.customers", "raw.customers", "dedupe_customers"),
                flow("raw.orders", "staging.orders", "stage_orders"),
                flow("raw.regions", "staging.orders", "stage_orders"),
                flow("staging.orders", "mart.revenue", "build_revenue")]),
        ],
        "FIND_DATASETS": [
            ({"names": ["raw.orders", "nothing.here"]}, [k.ref("raw.orders")]),
            ({"names": [f"{ns}-nothing"]}, []),
        ],
        "FIND_JOBS": [
            ({"names": ["daily", "raw.orders"]}, [k.ref("daily")]),
        ],
        "DATASET_FIELDS": [
            ({"namespace": ns, "name": "staging.orders"}, [
                {"field": "amount", "currentType": "decimal(18,2)"},
                {"field": "customer", "currentType": "string"},
                {"field": "id", "currentType": "bigint"},
                {"field": "note", "currentType": None},
                {"field": "region", "currentType": "string"}]),
            # raw.orders has no schema in the events: its fields come from column lineage.
            ({"namespace": ns, "name": "raw.orders"}, [
                {"field": f, "currentType": None} for f in ("amount", "customer", "id", "note")]),
        ],
    }


def names_parents_columns_cases(k: Known) -> dict[str, list[Case]]:
    """Issue #13, cases 4-6 on the known graph: the alias ``warehouse.orders`` of raw.orders,
    the parent job ``daily`` of day 1's jobs, column lineage with its ``indirect`` flags."""
    ns = k.ns
    orders_aliases = [{"namespace": ns, "name": "warehouse.orders", "type": "TABLE"}]

    def column_of(dataset: str, field: str, at: datetime | None = None) -> dict[str, Any]:
        return {"namespace": ns, "dataset": dataset, "field": field,
                **({} if at is None else {"asOf": at})}

    children = [node(k, 0, "Job", job, "daily") for job in (
        "build_revenue", "dedupe_customers", "publish_dashboard", "stage_orders")]
    direct = [{**row, "indirect": False} for rows in (
        lineage_cases(k)["FIELD_UPSTREAM"][0][1], lineage_cases(k)["FIELD_DOWNSTREAM"][0][1])
        for row in rows]
    return {
        "DATASET_NAMES": [
            ({"namespace": ns, "name": "warehouse.orders"}, [
                {"namespace": ns, "name": "raw.orders", "alias": True,
                 "aliases": orders_aliases}]),
            ({"namespace": ns, "name": "raw.orders"}, [
                {"namespace": ns, "name": "raw.orders", "alias": False,
                 "aliases": orders_aliases}]),
            ({"namespace": ns, "name": "mart.revenue"}, [
                {"namespace": ns, "name": "mart.revenue", "alias": False, "aliases": []}]),
        ],
        # The alias answers as raw.orders does (compare DATASET_DOWNSTREAM above).
        "DATASET_DOWNSTREAM": [
            ({"namespace": ns, "name": "warehouse.orders", "hops": 1, "asOf": NOW}, [
                node(k, 1, "Job", "stage_orders", "raw.orders"),
                node(k, 1, "Dataset", "staging.orders", "stage_orders")]),
        ],
        # daily only ran its children: they answer for it, listed at hop 0.
        "JOB_DOWNSTREAM": [
            ({"namespace": ns, "name": "daily", "hops": 1, "asOf": NOW}, [
                *children,
                node(k, 1, "Dataset", "mart.revenue", "build_revenue"),
                node(k, 1, "Dataset", "raw.customers", "dedupe_customers"),
                node(k, 1, "Dataset", "report.dashboard", "publish_dashboard"),
                node(k, 1, "Dataset", "staging.orders", "stage_orders")]),
        ],
        "JOB_UPSTREAM": [
            ({"namespace": ns, "name": "daily", "hops": 1, "asOf": NOW}, [
                *children,
                node(k, 1, "Dataset", "mart.revenue", "publish_dashboard"),
                node(k, 1, "Dataset", "raw.customers", "build_revenue", "dedupe_customers"),
                node(k, 1, "Dataset", "raw.orders", "stage_orders"),
                node(k, 1, "Dataset", "raw.regions", "stage_orders"),
                node(k, 1, "Dataset", "staging.orders", "build_revenue")]),
        ],
        # The known graph's column lineage is all direct: the FEEDS answers, none indirect.
        "COLUMN_UPSTREAM": [(column_of("report.dashboard", "total", NOW), direct[:3]),
                            (column_of("raw.orders", "amount", NOW), [])],
        "COLUMN_DOWNSTREAM": [(column_of("raw.orders", "amount", NOW), direct[3:]),
                              (column_of("warehouse.orders", "amount", NOW), direct[3:])],
        "COLUMN_UPSTREAM_EVER": [(column_of("report.dashboard", "total"), direct[:3])],
        "COLUMN_DOWNSTREAM_EVER": [(column_of("raw.orders", "amount"), direct[3:])],
    }


CASES: list[Callable[[Known], dict[str, list[Case]]]] = [
    lineage_cases, ever_cases, as_of_cases, history_cases, runs_cases, housekeeping_cases,
    names_parents_columns_cases]


def cases_of(k: Known) -> dict[str, list[Case]]:
    """Every recipe's cases, from every function of :data:`CASES`."""
    cases: dict[str, list[Case]] = {}
    for make in CASES:
        for name, more in make(k).items():
            cases.setdefault(name, []).extend(more)
    return cases


# --- a Spark application and an Airflow DAG: names, parents and indirect columns (issue #13) ---

DATASET_EVENT_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"


def facet(spec: str, body: dict[str, Any]) -> dict[str, Any]:
    """A facet of the standard spec ``spec`` (e.g. ``1-0-1/SymlinksDatasetFacet.json#/...``)."""
    return {"_producer": PRODUCER, "_schemaURL": f"https://openlineage.io/spec/facets/{spec}",
            **body}


@dataclass
class SparkAndAirflow:
    """Events as Spark 3.5's OpenLineage listener and Airflow's provider send them, with the
    names under ``/tmp/{uid}`` and namespaces holding ``uid`` (so a test can remove them).

    ::

        orders.csv ─> insert_totals (Spark) ─> mart.db/customer_totals ─(as hive://..:mart.
        customers.csv ─┐                        customer_totals)─> publish_totals (Airflow)
        orders.csv ────┴─> join_big_orders (Spark) ─> mart.db/big_orders   ─> totals_report

    - ``mart.db/customer_totals`` is the primary name (the file); Spark lists the catalog name
      ``file:/tmp/{uid}/warehouse:mart.customer_totals`` as a symlink, a DatasetEvent (as a Hive
      metastore hook sends) lists ``hive://{uid}-metastore:mart.customer_totals``, and the
      Airflow task reads the table by that Hive name.
    - Both Spark jobs are children of the application job ``customer_totals_app`` (the parent
      run facet); the Airflow task is a child of the DAG ``reporting``.
    - ``orders.csv.cust_id`` feeds no column: it filters ``customer_totals`` and joins
      ``big_orders`` (dataset-level column lineage, AFFECTS edges).
    """

    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    runs: dict[str, str] = field(default_factory=lambda: {
        name: str(uuid.uuid4()) for name in ("app", "totals", "big", "dag", "publish")})

    # The namespaces (and the root of the file names), each holding uid.
    root: str = field(init=False)
    spark: str = field(init=False)
    airflow: str = field(init=False)
    warehouse: str = field(init=False)  # of Spark's catalog names: the warehouse location
    hive: str = field(init=False)
    postgres: str = field(init=False)

    def __post_init__(self) -> None:
        self.root = f"/tmp/{self.uid}"
        self.spark, self.airflow = f"spark-{self.uid}", f"airflow-{self.uid}"
        self.warehouse = f"file:{self.root}/warehouse"
        self.hive = f"hive://{self.uid}-metastore:9083"
        self.postgres = f"postgres://{self.uid}-db:5432"

    def path(self, name: str) -> str:
        """A file name under the root: ``path("data/orders.csv")``."""
        return f"{self.root}/{name}"

    def file(self, name: str, **facets: Any) -> dict[str, Any]:
        return {"namespace": "file", "name": self.path(name), **({"facets": facets}
                                                                  if facets else {})}

    def namespaces(self) -> list[str]:
        """Every namespace of the events but ``file`` (shared: see :meth:`file_prefix`)."""
        return [self.spark, self.airflow, self.warehouse, self.hive, self.postgres]

    def file_prefix(self) -> str:
        """The start of every ``file`` dataset name of the events."""
        return f"{self.root}/"

    def schema(self, columns: list[tuple[str, str]]) -> dict[str, Any]:
        return facet("1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
                     {"fields": [{"name": n, "type": t} for n, t in columns]})

    def symlink(self, namespace: str, name: str) -> dict[str, Any]:
        return facet("1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet",
                     {"identifiers": [{"namespace": namespace, "name": name, "type": "TABLE"}]})

    def lineage(self, fields: dict[str, list[tuple[str, str, str]]],
                dataset: list[tuple[str, str, str]]) -> dict[str, Any]:
        """Column lineage: ``{column: [(file, column, "TYPE/SUBTYPE")]}`` and dataset-level
        ``[(file, column, "TYPE/SUBTYPE")]`` (the inputs are files of the root)."""
        def entry(name: str, column: str, kind: str) -> dict[str, Any]:
            kind_type, subtype = kind.split("/")
            return {"namespace": "file", "name": self.path(name), "field": column,
                    "transformations": [{"type": kind_type, "subtype": subtype}]}

        return facet("1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
                     {"fields": {target: {"inputFields": [entry(*s) for s in sources]}
                                 for target, sources in fields.items()},
                      "dataset": [entry(*s) for s in dataset]})

    def event(self, kind: str, time: str, namespace: str, job: str, run: str,
              parent: tuple[str, str, str] | None = None,
              inputs: list[dict[str, Any]] | None = None,
              outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A run event; ``parent`` is (run key, job namespace, job name)."""
        run_facets = {} if parent is None else {"parent": facet(
            "1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
            {"run": {"runId": self.runs[parent[0]]},
             "job": {"namespace": parent[1], "name": parent[2]}})}
        return {"eventType": kind, "eventTime": time, "producer": PRODUCER,
                "schemaURL": RUN_SCHEMA_URL,
                "run": {"runId": self.runs[run], "facets": run_facets},
                "job": {"namespace": namespace, "name": job, "facets": {}},
                "inputs": inputs or [], "outputs": outputs or []}

    def events(self) -> list[dict[str, Any]]:
        """Every event, in time order."""
        app = ("app", self.spark, "customer_totals_app")
        dag = ("dag", self.airflow, "reporting")
        orders = self.file("data/orders.csv", schema=self.schema(
            [("order_id", "bigint"), ("cust_id", "bigint"), ("amount", "double")]))
        customers = self.file("data/customers.csv")
        totals = self.file(
            "warehouse/mart.db/customer_totals",
            symlinks=self.symlink(self.warehouse, "mart.customer_totals"),
            schema=self.schema([("total", "double")]),
            columnLineage=self.lineage({"total": [("data/orders.csv", "amount",
                                                   "DIRECT/AGGREGATION")]},
                                       [("data/orders.csv", "cust_id", "INDIRECT/FILTER")]))
        big = self.file(
            "warehouse/mart.db/big_orders", schema=self.schema([("order_id", "bigint")]),
            columnLineage=self.lineage(
                {"order_id": [("data/orders.csv", "order_id", "DIRECT/IDENTITY")]},
                [("data/orders.csv", "cust_id", "INDIRECT/JOIN"),
                 ("data/customers.csv", "id", "INDIRECT/JOIN")]))
        hive_totals = {"namespace": self.hive, "name": "mart.customer_totals"}
        report = {"namespace": self.postgres, "name": "public.totals_report"}
        spark = self.spark
        return [
            self.event("START", "2024-05-01T08:00:00Z", spark, "customer_totals_app", "app"),
            self.event("START", "2024-05-01T08:00:10Z", spark,
                       "customer_totals_app.insert_totals", "totals", app, [orders],
                       [self.file("warehouse/mart.db/customer_totals")]),
            self.event("COMPLETE", "2024-05-01T08:01:00Z", spark,
                       "customer_totals_app.insert_totals", "totals", app, [orders], [totals]),
            self.event("START", "2024-05-01T08:01:10Z", spark,
                       "customer_totals_app.join_big_orders", "big", app,
                       [orders, customers], [self.file("warehouse/mart.db/big_orders")]),
            self.event("COMPLETE", "2024-05-01T08:02:00Z", spark,
                       "customer_totals_app.join_big_orders", "big", app, [orders, customers],
                       [big]),
            self.event("COMPLETE", "2024-05-01T08:02:05Z", spark, "customer_totals_app", "app"),
            # The metastore's own name for the table, as a DatasetEvent.
            {"eventTime": "2024-05-01T08:03:00Z", "producer": PRODUCER,
             "schemaURL": DATASET_EVENT_SCHEMA_URL,
             "dataset": self.file("warehouse/mart.db/customer_totals",
                                  symlinks=self.symlink(self.hive, "mart.customer_totals"))},
            self.event("START", "2024-05-01T09:00:00Z", self.airflow, "reporting", "dag"),
            self.event("START", "2024-05-01T09:00:05Z", self.airflow, "reporting.publish_totals",
                       "publish", dag, [hive_totals], [report]),
            self.event("COMPLETE", "2024-05-01T09:01:00Z", self.airflow,
                       "reporting.publish_totals", "publish", dag, [hive_totals], [report]),
            self.event("COMPLETE", "2024-05-01T09:01:05Z", self.airflow, "reporting", "dag"),
        ]
