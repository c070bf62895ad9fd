"""Duration histograms: Prometheus' bucket rule (a value on a bound is in that bucket), cumulative
counts ending at +Inf, and quantiles read the way `histogram_quantile` reads them."""

from __future__ import annotations

import math
import threading

import pytest

from agent.histogram import DELIVERY_BUCKETS_S, FRAME_BUCKETS_S, DurationHistogram


def test_values_on_a_bound_count_in_that_bucket_and_the_rest_above_every_bound() -> None:
    hist = DurationHistogram((0.01, 0.1, 1.0))
    for seconds in (0.005, 0.01, 0.05, 0.1, 2.0, 30.0):
        hist.observe(seconds)
    snap = hist.snapshot()
    assert snap.counts == (2, 2, 0, 2)
    assert snap.cumulative() == [(0.01, 2), (0.1, 4), (1.0, 4), (math.inf, 6)]
    assert snap.count == 6 and snap.sum_s == pytest.approx(32.165)


def test_quantiles_interpolate_inside_their_bucket() -> None:
    hist = DurationHistogram((1.0, 2.0, 4.0))
    for _ in range(50):
        hist.observe(0.5)
    for _ in range(50):
        hist.observe(3.0)
    snap = hist.snapshot()
    assert snap.quantile(0.5) == pytest.approx(1.0)
    assert snap.quantile(0.75) == pytest.approx(3.0)  # halfway through the (2, 4] bucket
    assert math.isnan(DurationHistogram((1.0,)).snapshot().quantile(0.5))


def test_observations_from_another_thread_are_all_counted() -> None:
    hist = DurationHistogram(FRAME_BUCKETS_S)
    threads = [threading.Thread(target=lambda: [hist.observe(0.012) for _ in range(5000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hist.snapshot().count == 20_000


@pytest.mark.parametrize("bounds", [(), (0.1, 0.1), (0.2, 0.1), (0.1, math.inf)])
def test_bounds_must_be_finite_and_strictly_ascending(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="strictly ascending"):
        DurationHistogram(bounds)


def test_shipped_buckets_cover_a_pi_and_an_outage() -> None:
    assert FRAME_BUCKETS_S[0] <= 0.004 and FRAME_BUCKETS_S[-1] >= 0.5  # fast x86 core to a slow Pi
    assert DELIVERY_BUCKETS_S[0] <= 0.005 and DELIVERY_BUCKETS_S[-1] >= 3600  # loopback to an hour's backlog
