"""How many failed logins the console takes per user name and per client address before it says 429.

Each key (`user:<name>`, `addr:<address>`) keeps the times of its recent
failures; once `max_failures` of them fall within `window_s`, further
attempts are refused until the oldest leaves the window, without checking
the password (so refused attempts cost no Argon2 time and do not extend the
lock). A successful login clears its user name's failures but not its
address's: one good account must not let an address try others freely.
The table is in memory and bounded; a restart forgets it.
"""

from __future__ import annotations

__all__ = ["LoginLimiter"]

import math
import threading
from collections import deque
from collections.abc import Callable

MAX_KEYS = 10_000


class LoginLimiter:
    """Failed-login bookkeeping (see the module docstring).

    Args:
        max_failures: failures allowed within the window.
        window_s: how long a failure counts.
        clock: seconds since the epoch.
        max_keys: keys kept at most; the oldest are forgotten first.
    """

    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float], *, max_keys: int = MAX_KEYS
    ) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        # Route handlers run on a thread pool.
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self._window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after_s(self, *keys: str) -> int | None:
        """Whole seconds until `keys` may try again, or None when they may now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is not None and len(times) >= self._max:
                    wait = max(wait, times[len(times) - self._max] + self._window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                times = self._recent(key, now) or self._failures.setdefault(key, deque(maxlen=self._max))
                times.append(now)
            while len(self._failures) > self._max_keys:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
