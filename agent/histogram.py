"""Durations counted into fixed buckets: what a Prometheus histogram exposes, kept by the agent.

It sits at the top beside `backoff.py` for the same reason: the camera
threads (inference and frame times, `agent.runtime.stats`) and the
publisher (alert delivery times, `agent.delivery`) measure durations the
same way and neither owns the other. A `DurationHistogram` is written by
one thread and read by the monitor; `snapshot` returns a frozen
`HistogramSnapshot` that goes into the stats JSON and the metrics as it is.
"""

from __future__ import annotations

__all__ = [
    "DELIVERY_BUCKETS_S",
    "FRAME_BUCKETS_S",
    "DurationHistogram",
    "HistogramSnapshot",
]

import bisect
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

# One inference is 4-15 ms on x86 and 50-200 ms on a Raspberry Pi (ARCHITECTURE.md, hot path):
# the buckets resolve both, and a frame taking a second or more is a problem whatever the box.
FRAME_BUCKETS_S: tuple[float, ...] = (
    0.002,
    0.004,
    0.006,
    0.008,
    0.010,
    0.015,
    0.020,
    0.030,
    0.050,
    0.075,
    0.100,
    0.150,
    0.200,
    0.300,
    0.500,
    1.0,
)
# Outbox to PUBACK: about a millisecond on loopback, up to hours for a backlog after an outage.
DELIVERY_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.010,
    0.025,
    0.050,
    0.100,
    0.250,
    0.500,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Counts of durations per bucket since start.

    Attributes:
        bounds_s: upper bounds of the buckets in seconds, ascending (a last bucket, +Inf, is implied).
        counts: durations per bucket, not cumulative: `len(bounds_s) + 1` entries, the last one
            for durations above every bound.
        sum_s: the sum of every duration counted, in seconds.
    """

    bounds_s: tuple[float, ...]
    counts: tuple[int, ...]
    sum_s: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, durations at or under it) per bucket, ending with (+Inf, count): Prometheus' `le`."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds_s, math.inf), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float:
        """The q-quantile (0-1), interpolated inside its bucket as Prometheus' `histogram_quantile` does."""
        total = self.count
        if total == 0:
            return math.nan
        rank = q * total
        lower, below = 0.0, 0
        for bound, cumulative in self.cumulative():
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower  # above the last bound: all that is known is "more than it"
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower


class DurationHistogram:
    """Counts durations into fixed buckets; `observe` from one thread, `snapshot` from any.

    Args:
        bounds_s: the buckets' upper bounds in seconds, strictly ascending and finite.
    """

    def __init__(self, bounds_s: Sequence[float]) -> None:
        bounds = tuple(float(b) for b in bounds_s)
        if not bounds or any(not math.isfinite(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"histogram bounds must be finite and strictly ascending, got {bounds}")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum_s = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        # Prometheus buckets are `le` (at or under the bound): bisect_left puts a value equal to a bound in it.
        index = bisect.bisect_left(self._bounds, seconds)
        with self._lock:
            self._counts[index] += 1
            self._sum_s += seconds

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            return HistogramSnapshot(self._bounds, tuple(self._counts), round(self._sum_s, 6))
