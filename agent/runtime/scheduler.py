"""Fair sharing of the box between cameras: one rate scale for every camera.

Each camera asks for its `detect_fps`. While the box keeps up, every camera
gets it (scale 1). When cameras start missing their detect slots (the
detector is busy with other cameras) or the process uses more than its CPU
share, the scheduler lowers one scale that applies to every camera, so each
loses the same share of its rate instead of the slowest thread starving;
when there is room again the scale climbs back to 1. Changes are logged
(`event=rate_scaled`) and the scale is part of the stats.
"""

from __future__ import annotations

__all__ = ["RateScheduler", "RateSignal"]

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from agent.logs import log_event

_log = logging.getLogger("agent.runtime.scheduler")

# Below this share of slots served a camera counts as falling behind; the gap
# to _RECOVER is hysteresis so the scale does not flap around one value.
_BEHIND = 0.9
_RECOVER = 0.98
_MIN_SCALE = 0.05


@dataclass(frozen=True, slots=True)
class RateSignal:
    """One camera over the last window: frames processed and detect slots missed."""

    processed: int
    missed: int

    @property
    def served_ratio(self) -> float | None:
        due = self.processed + self.missed
        return self.processed / due if due else None


class RateScheduler:
    """Keeps one rate scale (0-1] for every camera (see the module docstring).

    Args:
        max_cpu_fraction: share of the box's CPU the process may use.
        settle_updates: updates to wait after a change before judging again
            (the window must first fill with frames at the new rate).
    """

    def __init__(self, max_cpu_fraction: float, *, settle_updates: int = 3, start_grace_updates: int = 5) -> None:
        self._max_cpu = max_cpu_fraction
        self._settle = settle_updates
        # The first frames of a camera are slow (first decode, first inference): not judged.
        self._since_change = -start_grace_updates
        self._lock = threading.Lock()
        self._scale = 1.0

    @property
    def scale(self) -> float:
        return self._scale

    def period_s(self, target_fps: float) -> float:
        """Time between two frames of a camera that asks for `target_fps`."""
        return 1.0 / (target_fps * self._scale)

    def update(self, signals: Sequence[RateSignal], cpu_fraction: float) -> float:
        """Adjust the scale from the last window's signals; return the new scale."""
        with self._lock:
            self._since_change += 1
            if self._since_change < self._settle:
                return self._scale
            ratios = [r for r in (s.served_ratio for s in signals) if r is not None]
            worst = min(ratios) if ratios else 1.0
            new = self._scale
            if cpu_fraction > self._max_cpu:
                new = self._scale * max(0.5, self._max_cpu / cpu_fraction) * 0.97
            elif worst < _BEHIND:
                new = self._scale * max(0.7, worst) * 0.97
            elif self._scale < 1.0 and worst >= _RECOVER and cpu_fraction < 0.85 * self._max_cpu:
                new = self._scale * 1.2
            new = min(1.0, max(_MIN_SCALE, new))
            if abs(new - self._scale) < 1e-3:
                return self._scale
            self._scale, self._since_change = new, 0
        log_event(
            _log,
            "rate_scaled",
            scale=f"{new:.3f}",
            worst_served=f"{worst:.2f}",
            cpu=f"{cpu_fraction:.2f}",
            cpu_budget=f"{self._max_cpu:.2f}",
        )
        return new
