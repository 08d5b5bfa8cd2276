"""The benchmark harness's arithmetic: percentiles, histogram percentiles, run summaries, CPU
and memory."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from lineage.bench.measure import (
    ResourceMonitor,
    bucket_difference,
    cpu_seconds,
    histogram_quantile,
    percentile,
    rss_megabytes,
    summary,
)

BUCKETS = [(0.1, 10.0), (0.5, 60.0), (1.0, 90.0), (5.0, 100.0), (math.inf, 100.0)]


def test_a_quantile_interpolates_within_its_bucket_like_prometheus() -> None:
    assert histogram_quantile(BUCKETS, 0.5) == pytest.approx(0.1 + 0.4 * 40 / 50)
    assert histogram_quantile(BUCKETS, 0.05) == pytest.approx(0.05)
    assert histogram_quantile(BUCKETS, 0.99) == pytest.approx(1.0 + 4.0 * 9 / 10)


def test_a_quantile_beyond_the_last_finite_bucket_is_that_bucket_bound() -> None:
    assert histogram_quantile([(1.0, 1.0), (math.inf, 10.0)], 0.99) == 1.0


def test_a_quantile_of_no_observations_is_nan() -> None:
    assert math.isnan(histogram_quantile([(1.0, 0.0), (math.inf, 0.0)], 0.5))
    assert math.isnan(histogram_quantile([], 0.5))


def test_the_difference_of_two_scrapes_keeps_only_the_observations_between_them() -> None:
    before = [(1.0, 5.0), (math.inf, 7.0)]
    after = [(1.0, 8.0), (math.inf, 12.0)]
    assert bucket_difference(after, before) == [(1.0, 3.0), (math.inf, 5.0)]


def test_a_summary_reports_the_median_and_the_spread() -> None:
    assert summary([5.0, 1.0, 3.0, 2.0]) == {"median": 2.5, "min": 1.0, "max": 5.0, "runs": 4}


def test_the_monitor_sees_a_busy_child_use_cpu_and_memory() -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              "b = bytearray(60_000_000)\nwhile True: sum(range(10_000))"])
    try:
        with ResourceMonitor({"child": child.pid}, interval=0.05) as monitor:
            deadline = cpu_seconds(child.pid) + 0.3
            while cpu_seconds(child.pid) < deadline:
                pass
        usage = monitor.report()["child"]
        assert usage["cpu_seconds"] >= 0.2
        assert usage["peak_rss_mb"] >= 50
    finally:
        child.kill()
        child.wait()
    assert cpu_seconds(child.pid) == 0.0 and rss_megabytes(child.pid) == 0.0


def test_the_monitor_reads_this_process() -> None:
    assert rss_megabytes(os.getpid()) > 0


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0) == 15.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 50) == 35.0
    assert percentile(values, 40) == pytest.approx(29.0)  # numpy.percentile(values, 40)
    assert percentile(values, 99) == pytest.approx(49.6)


def test_percentile_does_not_depend_on_the_order_of_the_values() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.5], 1) == percentile([7.5], 99) == 7.5


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_refuses_what_has_no_answer(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=r"percentile|q must"):
        percentile(values, q)
