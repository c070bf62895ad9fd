"""How long a rule remembers an object it no longer sees.

The tracker keeps an unseen track (hidden behind a post, missed by the
detector) for `max_lost_s` and gives it back its id when it reappears, but
reports only the tracks it sees. A rule's per-object state (the side of a
line, the time it entered a zone) must outlive those gaps, or a person
walking behind a lamp post on a line crosses unseen and a dwell clock
restarts at every missed frame. `TrackMemory` records when each object was
last seen and says which have been unseen longer than the tracker keeps
them: their state goes, so none lives forever.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TRACK_RETENTION_S", "TrackMemory"]

from collections.abc import Iterable

# The tracker's default `max_lost_s`; the pipeline passes the running tracker's own value.
DEFAULT_TRACK_RETENTION_S = 3.0


class TrackMemory:
    """When each track id was last seen by one rule.

    Args:
        retention_s: how long an unseen track is remembered (the tracker's `max_lost_s`).
    """

    def __init__(self, retention_s: float = DEFAULT_TRACK_RETENTION_S) -> None:
        if retention_s < 0:
            raise ValueError(f"retention_s must be >= 0, got {retention_s}")
        self.retention_s = retention_s
        self._last_seen_s: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._last_seen_s)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._last_seen_s

    def saw(self, track_ids: Iterable[int], ts_monotonic_s: float) -> None:
        """Record the tracks seen in this frame."""
        for t in track_ids:
            self._last_seen_s[t] = ts_monotonic_s

    def last_seen_s(self, track_id: int) -> float | None:
        return self._last_seen_s.get(track_id)

    def forget_unseen(self, ts_monotonic_s: float, retention_s: float | None = None) -> list[int]:
        """Drop and return the tracks unseen for longer than `retention_s` (default: the memory's)."""
        limit = self.retention_s if retention_s is None else retention_s
        gone = [t for t, seen in self._last_seen_s.items() if ts_monotonic_s - seen > limit]
        for t in gone:
            del self._last_seen_s[t]
        return gone

    def forget(self, track_id: int) -> None:
        self._last_seen_s.pop(track_id, None)

    def clear(self) -> None:
        self._last_seen_s.clear()
