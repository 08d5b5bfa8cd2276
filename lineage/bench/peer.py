"""A peer through Marquez's HTTP API: ingest by ``POST /api/v1/lineage``, lineage queries by
``GET /api/v1/lineage?nodeId=dataset:<ns>:<name>&depth=5``.

Marquez (the OpenLineage reference server) speaks this API, and so does our gateway
(``lineage gateway``), so the same driver measures both. Ingest sends the workload's events one
per request over keep-alive connections from ``concurrency`` threads, each thread taking every
n-th event so that a run's events keep their order per thread; :func:`best_concurrency` tries a
few levels on a prefix of the workload and keeps the fastest.

Example::

    $ lineage bench e2e bench/work/1k.ndjson --peer-url http://127.0.0.1:5000
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

LEVELS = (1, 2, 4, 8, 16)


@dataclass
class IngestResult:
    """One ingest run through ``POST /api/v1/lineage``."""

    concurrency: int
    events: int
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


def _connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return http.client.HTTPConnection(host, port, timeout=120), parts.path.rstrip("/")


def ingest(url: str, events: Sequence[bytes], concurrency: int,
           headers: dict[str, str] | None = None) -> IngestResult:
    """POST every event once, ``concurrency`` requests in flight; counts the answers' statuses."""
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    sent = {"Content-Type": "application/json", **(headers or {})}

    def worker(share: Sequence[bytes]) -> None:
        connection, base = _connection(url)
        seen: Counter[str] = Counter()
        try:
            for body in share:
                try:
                    connection.request("POST", f"{base}/api/v1/lineage", body, sent)
                    answer = connection.getresponse()
                    answer.read()
                    seen[str(answer.status)] += 1
                except (OSError, http.client.HTTPException) as exc:
                    seen[type(exc).__name__] += 1
                    connection.close()
                    connection, base = _connection(url)
        finally:
            connection.close()
            with lock:
                statuses.update(seen)

    threads = [threading.Thread(target=worker, args=(events[i::concurrency],))
               for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return IngestResult(concurrency, len(events), round(time.perf_counter() - started, 3),
                        dict(statuses))


def best_concurrency(url: str, probe: Sequence[bytes], levels: Sequence[int] = LEVELS,
                     headers: dict[str, str] | None = None) -> tuple[int, list[IngestResult]]:
    """The level with the highest rate on ``probe`` (split across the levels, so that no event
    is sent twice), and every level's result."""
    share = max(1, len(probe) // len(levels))
    results = [ingest(url, probe[i * share:(i + 1) * share], level, headers)
               for i, level in enumerate(levels)]
    best = max(results, key=lambda r: r.rate)
    return best.concurrency, results


def lineage_latency(url: str, datasets: Sequence[tuple[str, str]], depth: int = 5,
                    headers: dict[str, str] | None = None) -> tuple[list[float], list[int]]:
    """Milliseconds of ``GET /api/v1/lineage`` for each (namespace, name), and the nodes each
    answer held (one keep-alive connection, client side: send, wait, read the body)."""
    import json

    connection, base = _connection(url)
    millis: list[float] = []
    nodes: list[int] = []
    try:
        for namespace, name in datasets:
            query = urllib.parse.urlencode({"nodeId": f"dataset:{namespace}:{name}",
                                            "depth": depth})
            started = time.perf_counter()
            connection.request("GET", f"{base}/api/v1/lineage?{query}", headers=headers or {})
            answer = connection.getresponse()
            body = answer.read()
            millis.append((time.perf_counter() - started) * 1000)
            if answer.status != 200:
                raise RuntimeError(f"GET lineage of {namespace}/{name}: HTTP {answer.status} "
                                   f"{body[:300]!r}")
            nodes.append(len(json.loads(body).get("graph", [])))
    finally:
        connection.close()
    return millis, nodes
