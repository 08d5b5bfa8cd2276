"""What the benchmark harness measures besides time: processes' CPU and memory, histogram
percentiles from a service's /metrics, and a description of the machine.

>>> histogram_quantile([(0.5, 0.0), (1.0, 50.0), (2.0, 100.0), (math.inf, 100.0)], 0.5)
1.0
>>> histogram_quantile([(0.5, 0.0), (1.0, 50.0), (2.0, 100.0), (math.inf, 100.0)], 0.99)
1.98
>>> summary([3.0, 1.0, 2.0])
{'median': 2.0, 'min': 1.0, 'max': 3.0, 'runs': 3}
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, proc(5)).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_megabytes(pid: int) -> float:
    """Resident memory of a live process in MB (0.0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


class ResourceMonitor:
    """CPU seconds and peak RSS of named processes over a ``with`` block.

    The peak is sampled (every ``interval`` seconds), so it is the peak during the block, not
    the process's lifetime high-water mark (Kafka's and Neo4j's predate the run).
    """

    def __init__(self, pids: Mapping[str, int], interval: float = 0.5) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.cpu: dict[str, float] = {}
        self.peak_rss: dict[str, float] = dict.fromkeys(self.pids, 0.0)
        self._start: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="resources", daemon=True)

    def add(self, name: str, pid: int) -> None:
        """Watch another process from now on (a service started inside the block)."""
        self._start[name] = cpu_seconds(pid)
        self.pids[name] = pid
        self.peak_rss.setdefault(name, 0.0)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Record each process's CPU so far and its RSS now."""
        for name, pid in list(self.pids.items()):
            used = cpu_seconds(pid)
            if used:  # a process that exited keeps its last reading
                self.cpu[name] = used - self._start.get(name, 0.0)
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss_megabytes(pid))

    def __enter__(self) -> ResourceMonitor:
        self._start.update({name: cpu_seconds(pid) for name, pid in self.pids.items()})
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(timeout=5)

    def report(self) -> dict[str, dict[str, float]]:
        """{name: {"cpu_seconds": ..., "peak_rss_mb": ...}}."""
        return {name: {"cpu_seconds": round(self.cpu.get(name, 0.0), 2),
                       "peak_rss_mb": round(self.peak_rss.get(name, 0.0), 1)}
                for name in self.pids}


def _family(url: str, name: str) -> Any:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback service
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return family
    raise LookupError(f"{url} serves no histogram {name}")


def scrape_histogram(url: str, name: str) -> list[tuple[float, float]]:
    """The cumulative buckets ``(le, count)`` of histogram ``name`` on a /metrics page."""
    return sorted((float(s.labels["le"]), s.value) for s in _family(url, name).samples
                  if s.name.endswith("_bucket"))


def scrape_sums(url: str, name: str, label: str) -> dict[str, float]:
    """The ``_sum`` of histogram ``name`` on a /metrics page, by the value of ``label``."""
    return {s.labels[label]: round(s.value, 3) for s in _family(url, name).samples
            if s.name.endswith("_sum")}


def bucket_difference(after: Sequence[tuple[float, float]],
                      before: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Buckets of the observations made between two scrapes."""
    earlier = dict(before)
    return [(le, count - earlier.get(le, 0.0)) for le, count in after]


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """The ``q`` quantile (0-1) of cumulative buckets, interpolated linearly within a bucket
    (Prometheus's histogram_quantile); NaN without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_le  # beyond the last finite bucket: its bound is all we know
            if count == lower_count:
                return le
            return round(lower_le + (le - lower_le) * (rank - lower_count)
                         / (count - lower_count), 6)
        lower_le, lower_count = le, count
    return lower_le


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of several runs (the spread the report shows)."""
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": len(values)}


def machine() -> dict[str, str | int | float]:
    """The machine the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = int(re.findall(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[0])
    except (OSError, IndexError):
        memory = 0
    java = shutil.which("java")
    java_version = ""
    if java:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        java_version = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) \
            else ""
    return {"cpus": os.cpu_count() or 0, "cpu_model": cpu,
            "memory_gib": round(memory / 1024 / 1024, 1),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "java": java_version,
            "load_average_at_start": round(os.getloadavg()[0], 2),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
