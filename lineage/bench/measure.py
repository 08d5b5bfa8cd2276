"""How the benchmarks measure: when a consumer group committed (the clock of a service under
test), topic sizes, a group settling, percentiles, processes' CPU and memory, histogram
percentiles from a service's /metrics, and a description of the machine.

>>> CommitWindow(first=1.0, covered_by_first=10, last=3.0).timed(100, launched=0.5)
(90, 2.0, False)
>>> percentile([1.0, 2.0, 3.0, 4.0], 50)
2.5

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
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaException

from core.errors import ServiceUnavailable
from core.kafka_config import admin_client, consumer_config
from core.settings import KafkaSettings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CommitWindow:
    """When a consumer group first and last committed on a topic (``perf_counter`` values)."""

    first: float
    covered_by_first: int  # messages the first commit covered
    last: float

    def timed(self, total: int, launched: float) -> tuple[int, float, bool]:
        """(messages, seconds, from_start) to compute a benchmark's rate from.

        From the first commit to the last, so the service's start-up is not counted; from
        ``launched`` (True) when the first commit already covered all ``total`` messages (one
        batch held a tiny workload), since only the wall time says anything then.
        """
        if self.covered_by_first >= total:
            return total, self.last - launched, True
        return total - self.covered_by_first, self.last - self.first, False


def commit_window(consumer: Any, topic: str, check: Callable[[], None],
                  progress: Callable[[int], None] | None = None,
                  interval: float = 0.1, progress_seconds: float = 10) -> CommitWindow:
    """Poll the committed offsets of ``consumer``'s group on ``topic`` until they reach its end.

    For benchmarks (see :class:`CommitWindow`). ``check`` runs on every poll and raises when
    the service under test died; ``progress`` gets the messages committed so far, at most once
    every ``progress_seconds``.
    """
    from confluent_kafka import TopicPartition

    parts = [TopicPartition(topic, p) for p in
             consumer.list_topics(topic, timeout=30).topics[topic].partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in parts}
    first_commit: tuple[float, int] | None = None
    next_progress = time.monotonic() + progress_seconds
    while True:
        committed = {tp.partition: max(tp.offset, 0)
                     for tp in consumer.committed(parts, timeout=30)}
        done = sum(committed.values())
        if done and first_commit is None:
            first_commit = (time.perf_counter(), done)
        if first_commit and all(committed[p] >= end for p, end in ends.items()):
            return CommitWindow(*first_commit, time.perf_counter())
        check()
        if progress is not None and time.monotonic() >= next_progress:
            next_progress = time.monotonic() + progress_seconds
            progress(done)
        time.sleep(interval)


def message_count(kafka: KafkaSettings, topic: str) -> int:
    """How many messages ``topic`` holds now; 0 while it is being created."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(consumer_config(kafka, f"counter-{uuid.uuid4().hex[:8]}"))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in meta.partitions)
    except KafkaException:
        return 0
    finally:
        consumer.close()


def wait_for_group(kafka: KafkaSettings, group: str, members: int = 1,
                   timeout: float = 120) -> None:
    """Block until consumer ``group`` is stable with ``members`` members, each holding
    partitions; raises :class:`ServiceUnavailable` after ``timeout`` seconds."""
    from confluent_kafka import ConsumerGroupState

    admin = admin_client(kafka)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:
            description = None
        if (description is not None and description.state == ConsumerGroupState.STABLE
                and len(description.members) == members
                and all(m.assignment.topic_partitions for m in description.members)):
            return
        time.sleep(0.5)
    raise ServiceUnavailable(f"consumer group {group} did not settle with {members} members "
                             f"in {timeout:.0f}s")


class EventRate:
    """What every result of events over seconds shares: the rate (a base of result classes)."""

    events: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events per second; 0.0 when no time was measured."""
        return self.events / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between ranks.

    The same definition as numpy's default:

    >>> percentile([10.0, 20.0, 30.0], 99), percentile([5.0], 50)
    (29.8, 5.0)
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


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
