"""Counters of the break-glass desk, as the site's stats carry them.

Written by the desk's thread (and paho's, for a request refused because the
queue was full), read by the monitor once a second as one frozen snapshot.
Counts are since start; `pending` and `active` are what the table holds now.
"""

from __future__ import annotations

__all__ = ["BreakGlassCounters", "BreakGlassMeter"]

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BreakGlassCounters:
    """Where break-glass stands.

    Attributes:
        subscribed: whether the broker granted the requests subscription.
        requests: requests believed (signed by the recipient's key, for this site) and recorded.
        rejected: messages not believed, by reason (`break_glass_check.REJECT_REASONS`).
        duplicates: a request seen before (a QoS 1 redelivery), ignored.
        granted_automatic, granted_approved: grants within the agreement's limits, at once or
            after `edge-agent requests approve`.
        refused: believed requests refused, by reason (the agreement's, `refused_by_owner`, `lapsed`).
        ended_expired, ended_revoked: grants that ran their time, or were revoked.
        pending: requests waiting for the owner now.
        active: grants widening sharing now.
        notices_sent, notices_failed: signed notices put in the outbox for the owner, or not.
    """

    subscribed: bool = False
    requests: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    granted_automatic: int = 0
    granted_approved: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    ended_expired: int = 0
    ended_revoked: int = 0
    pending: int = 0
    active: int = 0
    notices_sent: int = 0
    notices_failed: int = 0


class BreakGlassMeter:
    """Counts for `BreakGlassCounters`; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = False
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._now = (0, 0)

    def subscription(self, granted: bool, detail: str) -> None:
        """The broker's answer to the requests subscription (a `Subscription.on_granted`)."""
        with self._lock:
            self._subscribed = granted

    def count(self, what: str) -> None:
        """One more of `requests`, `duplicates`, `granted_automatic`, ... (a counter's name)."""
        with self._lock:
            self._counts[what] += 1

    def rejected(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def refused(self, reason: str) -> None:
        with self._lock:
            self._refused[reason] += 1

    def table_now(self, pending: int, active: int) -> None:
        with self._lock:
            self._now = (pending, active)

    def snapshot(self) -> BreakGlassCounters:
        with self._lock:
            c = self._counts
            return BreakGlassCounters(
                subscribed=self._subscribed,
                requests=c["requests"],
                rejected=dict(self._rejected),
                duplicates=c["duplicates"],
                granted_automatic=c["granted_automatic"],
                granted_approved=c["granted_approved"],
                refused=dict(self._refused),
                ended_expired=c["ended_expired"],
                ended_revoked=c["ended_revoked"],
                pending=self._now[0],
                active=self._now[1],
                notices_sent=c["notices_sent"],
                notices_failed=c["notices_failed"],
            )
