"""Whether a camera is idle: nothing has moved and nothing has been tracked for a while.

An idle camera looks at a lower rate (`motion.idle_fps`) until the next
motion; `IdleWatch` owns only that decision, from the time of each looked-at
frame and whether it showed motion or a tracked object. The worker that
paces the camera acts on it.
"""

from __future__ import annotations

__all__ = ["IdleWatch"]


class IdleWatch:
    """Tracks one camera's last activity (not thread-safe; the camera's own thread).

    Args:
        idle_after_s: seconds without motion or tracks after which the camera is idle;
            None: never idle (today's behaviour).
    """

    def __init__(self, idle_after_s: float | None) -> None:
        if idle_after_s is not None and not idle_after_s > 0:
            raise ValueError(f"idle_after_s must be > 0 or None, got {idle_after_s}")
        self.idle_after_s = idle_after_s
        self._last_active_s: float | None = None
        self.idle = False

    def update(self, ts_monotonic_s: float, active: bool) -> bool:
        """Record one looked-at frame (`active`: it had motion or tracked objects); return whether idle."""
        if self.idle_after_s is None:
            return False
        if active or self._last_active_s is None:
            # The first frame starts the clock: a camera is never idle before it has looked for a while.
            self._last_active_s = ts_monotonic_s
        self.idle = not active and ts_monotonic_s - self._last_active_s >= self.idle_after_s
        return self.idle

    def reset(self) -> None:
        """Forget the last activity (a restart or a reload): look at the full rate again."""
        self._last_active_s = None
        self.idle = False
