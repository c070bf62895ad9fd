"""One incident's life from start through updates to end, shared by every rule.

A rule decides, frame by frame, what satisfies it now (an `Observation`):
the objects inside a zone long enough, or the objects that crossed a line in
this frame. `IncidentLifecycle` turns that stream into events: `start` when
something first satisfies the rule, `update` only when the reported count
changes and at most once per `update_interval_s`, `end` once nothing has
satisfied it for `end_after_s`, and then a `cooldown_s` during which no new
incident may start, so an object stepping in and out at a zone edge does not
flap.

What an event counts is the one thing rules differ in (`IncidentCount`):

- `present`: the objects that satisfy the rule in the frame (zone rules).
  The class named is that of the objects there now, and the end reports 0.
- `total`: everything observed over the incident (line rules: crossings).
  A crossing is an instant, so the incident is held open while crossings
  keep arriving less than `end_after_s` apart (the rule's
  `incident_window_s`); the class named is the most frequent over the
  incident, an update may report crossings folded in from frames before it,
  and the end repeats the total.
"""

from __future__ import annotations

__all__ = [
    "IncidentCount",
    "IncidentLifecycle",
    "IncidentTiming",
    "Observation",
    "RuleIdentity",
    "observation_of",
]

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent

IncidentCount = Literal["present", "total"]


@dataclass(frozen=True, slots=True)
class IncidentTiming:
    """Lifecycle settings of one rule, in seconds.

    Attributes:
        update_interval_s: least time between two updates.
        end_after_s: how long the incident stays open with nothing satisfying the rule.
        cooldown_s: after an end, how long no new incident may start.
    """

    update_interval_s: float
    end_after_s: float
    cooldown_s: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What satisfies a rule in one frame (nothing: `class_names` empty).

    Attributes:
        class_names: the class of each object that satisfies the rule now, one per object.
        dwell_s: longest time one of them has satisfied it (0 for instants).
        confidence: highest detection score among them (0 when none).
    """

    class_names: tuple[str, ...]
    dwell_s: float
    confidence: float
    ts_monotonic_s: float
    ts_utc: datetime

    @property
    def count(self) -> int:
        return len(self.class_names)


def observation_of(
    counted: Tracks, dwell_s: np.ndarray, class_names: Sequence[str], mono: float, utc: datetime
) -> Observation:
    """The observation for the tracks that satisfy a rule now, with their dwell times."""
    if len(counted) == 0:
        return Observation((), 0.0, 0.0, mono, utc)
    return Observation(
        class_names=tuple(class_names[int(c)] for c in counted.class_id),
        dwell_s=float(dwell_s.max()) if dwell_s.size else 0.0,
        confidence=float(counted.score.max()),
        ts_monotonic_s=mono,
        ts_utc=utc,
    )


@dataclass(frozen=True, slots=True)
class RuleIdentity:
    """Names an event carries: which rule, kind, zone or line, severity, and direction for lines."""

    rule: str
    rule_kind: str
    zone: str | None
    line: str | None
    severity: str
    direction: str | None = None


@dataclass(slots=True)
class _Open:
    key: int
    first_seen_utc: datetime
    last_seen_utc: datetime
    last_active_mono: float
    last_update_mono: float
    total: int
    reported_count: int
    classes: Counter[str]
    dwell_s: float
    confidence: float

    @property
    def class_name(self) -> str:
        # Ties go to the class seen first (Counter keeps insertion order).
        return self.classes.most_common(1)[0][0]


class IncidentLifecycle:
    """Start/update/end state machine for one rule (or one direction of a line rule) on one camera.

    Args:
        identity: the names every event carries.
        timing: update interval, how long an incident holds without activity, cooldown.
        count: what events count (see the module docstring).
        keys: incident keys; a line rule's directions share one, so a key names one
            incident of the whole rule. Default: 1, 2, ... of this lifecycle.
    """

    def __init__(
        self,
        identity: RuleIdentity,
        timing: IncidentTiming,
        *,
        count: IncidentCount = "present",
        keys: Iterator[int] | None = None,
    ) -> None:
        self._identity = identity
        self._timing = timing
        self._total = count == "total"
        self._keys = keys if keys is not None else itertools.count(1)
        self._open: _Open | None = None
        self._cooldown_until_mono = float("-inf")

    def reset(self) -> None:
        self._open = None
        self._cooldown_until_mono = float("-inf")

    @property
    def active(self) -> bool:
        return self._open is not None

    def update(self, obs: Observation) -> RuleEvent | None:
        """Feed one frame's observation; return the event it causes, if any."""
        current = self._open
        if current is None:
            if obs.count > 0 and obs.ts_monotonic_s >= self._cooldown_until_mono:
                return self._start(obs)
            return None
        if obs.count > 0:
            self._absorb(current, obs)
        elif obs.ts_monotonic_s - current.last_active_mono >= self._timing.end_after_s:
            return self.finish(obs.ts_monotonic_s, obs.ts_utc)
        # With nothing present there is nothing to update (the end reports it); a total
        # stays, so crossings held back by the update interval go out on a quiet frame.
        count = current.total if self._total else obs.count
        due = obs.ts_monotonic_s - current.last_update_mono >= self._timing.update_interval_s
        if count > 0 and count != current.reported_count and due:
            current.reported_count = count
            current.last_update_mono = obs.ts_monotonic_s
            return self._event("update", current, count, obs.ts_utc)
        return None

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | None:
        """End the open incident now (used at the end of a replay or on shutdown)."""
        current = self._open
        if current is None:
            return None
        self._open = None
        self._cooldown_until_mono = ts_monotonic_s + self._timing.cooldown_s
        return self._event("end", current, current.total if self._total else 0, ts_utc)

    def _start(self, obs: Observation) -> RuleEvent:
        self._open = _Open(
            key=next(self._keys),
            first_seen_utc=obs.ts_utc,
            last_seen_utc=obs.ts_utc,
            last_active_mono=obs.ts_monotonic_s,
            last_update_mono=obs.ts_monotonic_s,
            total=obs.count,
            reported_count=obs.count,
            classes=Counter(obs.class_names),
            dwell_s=obs.dwell_s,
            confidence=obs.confidence,
        )
        return self._event("start", self._open, obs.count, obs.ts_utc)

    def _absorb(self, current: _Open, obs: Observation) -> None:
        """Fold an active frame into the open incident."""
        current.last_active_mono = obs.ts_monotonic_s
        current.last_seen_utc = obs.ts_utc
        current.dwell_s = max(current.dwell_s, obs.dwell_s)
        current.confidence = max(current.confidence, obs.confidence)
        if self._total:
            current.total += obs.count
            current.classes.update(obs.class_names)
        else:
            current.classes = Counter(obs.class_names)

    def _event(self, phase: Literal["start", "update", "end"], inc: _Open, count: int, ts_utc: datetime) -> RuleEvent:
        ident = self._identity
        return RuleEvent(
            phase=phase,
            incident_key=inc.key,
            rule=ident.rule,
            rule_kind=ident.rule_kind,
            zone=ident.zone,
            line=ident.line,
            class_name=inc.class_name,
            count=count,
            dwell_s=round(inc.dwell_s, 3),
            confidence=round(inc.confidence, 4),
            first_seen_utc=inc.first_seen_utc,
            last_seen_utc=inc.last_seen_utc,
            ts_utc=ts_utc,
            severity=ident.severity,
            direction=ident.direction,
        )
