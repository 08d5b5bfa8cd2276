"""A gateway under hostile clients: the latency of a normal POST meanwhile (issue #14).

While it measures, one client sends 16 MB batches of tiny items (``[1,1,...]``, refused with
413) in a loop, and ``slow_connections`` others send a request's headers one byte every half
second (the gateway closes them at its header deadline; they are opened again). A normal POST of
one event goes every 50 ms; its latency is what a well-behaved producer sees. With the gateway's
pid, the report adds its peak resident memory (VmHWM). Traffic goes to ``url`` only: point it at
a gateway on this machine.

>>> result = HostileResult(latencies=[0.01, 0.02, 0.03], statuses={201: 3}, batches=1,
...                        slow_closed=2, peak_rss_mb=None)
>>> f"{result.p99 * 1000:.1f}"
'29.8'
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lineage.bench.measure import percentile

TINY_BATCH = b"[" + b"1," * 8_000_000 + b"1]"


@dataclass
class HostileResult:
    """What a well-behaved client saw while the others misbehaved."""

    latencies: list[float]
    statuses: dict[int, int]
    batches: int
    slow_closed: int
    peak_rss_mb: float | None

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


def _event() -> bytes:
    return json.dumps({
        "eventType": "COMPLETE", "eventTime": "2024-05-01T12:00:00Z",
        "producer": "https://example.com/lineage-bench-gateway",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "bench-gateway", "name": "well-behaved"}}).encode()


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak resident memory (VmHWM) in MB, or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def hostile_load(url: str, *, seconds: float = 30.0, slow_connections: int = 100,
                 batches: bool = True, pid: int | None = None) -> HostileResult:
    """Measure for ``seconds`` (see the module docstring); without ``batches`` or slow
    connections, the latency of a quiet gateway to compare with."""
    import httpx

    stop = threading.Event()
    counts = Counter[str]()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = (f"POST /api/v1/lineage HTTP/1.1\r\nHost: {host}\r\n"
               "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n").encode()

    def big_batches() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                client.post(f"{url}/api/v1/lineage/batch", content=TINY_BATCH,
                            headers={"Content-Type": "application/json"})
                counts["sent"] += 1

    def slow_headers() -> None:
        conns: list[tuple[socket.socket, int]] = []
        while not stop.is_set():
            while len(conns) < slow_connections:
                conns.append((socket.create_connection((host, port)), 0))
            kept = []
            for conn, sent in conns:
                try:
                    conn.sendall(headers[sent % len(headers):sent % len(headers) + 1])
                    kept.append((conn, sent + 1))
                except OSError:  # the gateway closed it: its header deadline
                    conn.close()
                    counts["slow closed"] += 1
            conns = kept
            stop.wait(0.5)
        for conn, _ in conns:
            conn.close()

    workers = [threading.Thread(target=target, daemon=True) for target, wanted in (
        (big_batches, batches), (slow_headers, slow_connections > 0)) if wanted]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = client.post(f"{url}/api/v1/lineage", content=_event(),
                                 headers={"Content-Type": "application/json"})
            latencies.append(time.perf_counter() - started)
            statuses[answer.status_code] += 1
            time.sleep(0.05)
    stop.set()
    for worker in workers:
        worker.join(timeout=130)
    return HostileResult(latencies, dict(statuses), counts["sent"], counts["slow closed"],
                         peak_rss_mb(pid) if pid is not None else None)
