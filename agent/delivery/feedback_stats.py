"""Counters of the statuses that come back, per recipient: what the stats topic, `status` and Prometheus show.

A `FeedbackMeter` is written by the feedback thread and read by the agent's
monitor, which puts `snapshot()` (a frozen `FeedbackCounters`) into the
site's stats. Latencies are histograms in seconds (`agent.histogram`), from
the alert's publish (the broker's PUBACK, as the site's client saw it) to
when its first `received`, and its first acknowledging status, came back to
the site, both on the site's clock.
"""

from __future__ import annotations

__all__ = ["UNATTRIBUTED", "FeedbackCounters", "FeedbackMeter", "RecipientFeedback"]

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.histogram import DELIVERY_BUCKETS_S, DurationHistogram, HistogramSnapshot

# The recipient label of a status whose topic names no configured recipient (never a valid recipient name).
UNATTRIBUTED = "(unknown)"


def _empty() -> HistogramSnapshot:
    return DurationHistogram(DELIVERY_BUCKETS_S).snapshot()


@dataclass(frozen=True, slots=True)
class RecipientFeedback:
    """One recipient's statuses since start.

    Attributes:
        statuses: accepted statuses by kind (`received`, `acknowledged`, ...).
        rejected: refused statuses by reason (`bad_signature`, `unknown_key`, `unknown_alert`, ...).
        duplicates: statuses whose `status_id` had been seen (ignored).
        received_seconds: alert published (PUBACK) -> its first `received` came back.
        acknowledged_seconds: alert published (PUBACK) -> its first acknowledging status came back.
        escalated: incidents sent on to `escalate_to` because no acknowledgement came in time.
        escalations_pending: incidents waiting for this recipient's acknowledgement now.
        last_status: the kind of the last accepted status ('' when none); last_status_unix_s: when.
    """

    recipient: str
    statuses: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    received_seconds: HistogramSnapshot = field(default_factory=_empty)
    acknowledged_seconds: HistogramSnapshot = field(default_factory=_empty)
    escalated: int = 0
    escalations_pending: int = 0
    last_status: str = ""
    last_status_unix_s: float = 0.0


@dataclass(frozen=True, slots=True)
class FeedbackCounters:
    """Every recipient's `RecipientFeedback` (`UNATTRIBUTED` for topics naming no recipient), and the
    subscription: `subscribed` once the broker granted it, `subscription_problem` while it refuses it."""

    recipients: tuple[RecipientFeedback, ...] = ()
    subscribed: bool = False
    subscription_problem: str = ""


class _Recipient:
    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.duplicates = self.escalated = self.pending = 0
        self.received = DurationHistogram(DELIVERY_BUCKETS_S)
        self.acknowledged = DurationHistogram(DELIVERY_BUCKETS_S)
        self.last_status, self.last_unix_s = "", 0.0


class FeedbackMeter:
    """Thread-safe counters behind `FeedbackCounters` (see the module docstring)."""

    def __init__(self, recipients: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._by: dict[str, _Recipient] = {name: _Recipient() for name in recipients}
        self._subscribed = False
        self._problem = ""

    def _of(self, recipient: str) -> _Recipient:
        return self._by.setdefault(recipient, _Recipient())

    def accepted(self, recipient: str, kind: str, unix_s: float) -> None:
        with self._lock:
            r = self._of(recipient)
            r.statuses[kind] = r.statuses.get(kind, 0) + 1
            r.last_status, r.last_unix_s = kind, unix_s

    def rejected(self, recipient: str, reason: str) -> None:
        with self._lock:
            r = self._of(recipient)
            r.rejected[reason] = r.rejected.get(reason, 0) + 1

    def duplicate(self, recipient: str) -> None:
        with self._lock:
            self._of(recipient).duplicates += 1

    def received_after(self, recipient: str, seconds: float) -> None:
        self._histogram(recipient, "received").observe(max(0.0, seconds))

    def acknowledged_after(self, recipient: str, seconds: float) -> None:
        self._histogram(recipient, "acknowledged").observe(max(0.0, seconds))

    def _histogram(self, recipient: str, which: str) -> DurationHistogram:
        with self._lock:
            r = self._of(recipient)
            return r.received if which == "received" else r.acknowledged

    def escalated(self, recipient: str) -> None:
        with self._lock:
            self._of(recipient).escalated += 1

    def set_pending(self, pending: dict[str, int]) -> None:
        """Incidents waiting for an acknowledgement now, per recipient."""
        with self._lock:
            for name, r in self._by.items():
                r.pending = pending.get(name, 0)
            for name, count in pending.items():
                self._of(name).pending = count

    def subscription(self, granted: bool, problem: str) -> None:
        with self._lock:
            self._subscribed, self._problem = granted, problem

    def snapshot(self) -> FeedbackCounters:
        with self._lock:
            items = sorted(self._by.items())
            subscribed, problem = self._subscribed, self._problem
            return FeedbackCounters(
                tuple(
                    RecipientFeedback(
                        recipient=name,
                        statuses=dict(r.statuses),
                        rejected=dict(r.rejected),
                        duplicates=r.duplicates,
                        received_seconds=r.received.snapshot(),
                        acknowledged_seconds=r.acknowledged.snapshot(),
                        escalated=r.escalated,
                        escalations_pending=r.pending,
                        last_status=r.last_status,
                        last_status_unix_s=r.last_unix_s,
                    )
                    for name, r in items
                ),
                subscribed,
                problem,
            )
