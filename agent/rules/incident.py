"""One incident's life from start through updates to end, shared by every rule.

A rule decides, frame by frame, which objects satisfy it now (an
`Observation`). `IncidentLifecycle` turns that stream into events: `start`
when something first satisfies the rule, `update` only when the count changes
and at most once per `update_interval_s`, `end` once nothing has satisfied it
for `end_after_s`, and then a `cooldown_s` during which no new incident may
start, so an object stepping in and out at a zone edge does not flap.
"""

from __future__ import annotations

__all__ = ["IncidentLifecycle", "IncidentTiming", "Observation", "RuleIdentity", "observation_of"]

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from agent.values.detections import Tracks
from agent.values.rule_events import RuleEvent


@dataclass(frozen=True, slots=True)
class IncidentTiming:
    """Lifecycle settings of one rule, in seconds."""

    update_interval_s: float
    end_after_s: float
    cooldown_s: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What satisfies a rule in one frame (count 0 when nothing does)."""

    count: int
    class_name: str
    dwell_s: float
    confidence: float
    ts_monotonic_s: float
    ts_utc: datetime


def observation_of(
    counted: Tracks, dwell_s: np.ndarray, class_names: Sequence[str], mono: float, utc: datetime
) -> Observation:
    """The observation for the tracks that satisfy a rule now, with their dwell times."""
    n = len(counted)
    if n == 0:
        return Observation(0, "", 0.0, 0.0, mono, utc)
    classes = Counter(class_names[int(c)] for c in counted.class_id)
    return Observation(
        count=n,
        class_name=classes.most_common(1)[0][0],
        dwell_s=float(dwell_s.max()) if dwell_s.size else 0.0,
        confidence=float(counted.score.max()),
        ts_monotonic_s=mono,
        ts_utc=utc,
    )


@dataclass(frozen=True, slots=True)
class RuleIdentity:
    """Names an event carries: which rule, kind, zone or line, severity."""

    rule: str
    rule_kind: str
    zone: str | None
    line: str | None
    severity: str


@dataclass(slots=True)
class _Open:
    key: int
    first_seen_utc: datetime
    last_seen_utc: datetime
    last_active_mono: float
    last_update_mono: float
    reported_count: int
    class_name: str
    dwell_s: float
    confidence: float


class IncidentLifecycle:
    """Start/update/end state machine for one rule on one camera."""

    def __init__(self, identity: RuleIdentity, timing: IncidentTiming) -> None:
        self._identity = identity
        self._timing = timing
        self._open: _Open | None = None
        self._incidents = 0
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
            current.last_active_mono = obs.ts_monotonic_s
            current.last_seen_utc = obs.ts_utc
            current.class_name = obs.class_name
            current.dwell_s = max(current.dwell_s, obs.dwell_s)
            current.confidence = max(current.confidence, obs.confidence)
            due = obs.ts_monotonic_s - current.last_update_mono >= self._timing.update_interval_s
            if obs.count != current.reported_count and due:
                current.reported_count = obs.count
                current.last_update_mono = obs.ts_monotonic_s
                return self._event("update", current, obs.count, obs.ts_utc)
            return None
        if obs.ts_monotonic_s - current.last_active_mono >= self._timing.end_after_s:
            return self.finish(obs.ts_monotonic_s, obs.ts_utc)
        return None

    def finish(self, ts_monotonic_s: float, ts_utc: datetime) -> RuleEvent | None:
        """End the open incident now (used at the end of a replay or on shutdown)."""
        current = self._open
        if current is None:
            return None
        self._open = None
        self._cooldown_until_mono = ts_monotonic_s + self._timing.cooldown_s
        return self._event("end", current, 0, ts_utc)

    def _start(self, obs: Observation) -> RuleEvent:
        self._incidents += 1
        self._open = _Open(
            key=self._incidents,
            first_seen_utc=obs.ts_utc,
            last_seen_utc=obs.ts_utc,
            last_active_mono=obs.ts_monotonic_s,
            last_update_mono=obs.ts_monotonic_s,
            reported_count=obs.count,
            class_name=obs.class_name,
            dwell_s=obs.dwell_s,
            confidence=obs.confidence,
        )
        return self._event("start", self._open, obs.count, obs.ts_utc)

    def _event(self, phase: str, inc: _Open, count: int, ts_utc: datetime) -> RuleEvent:
        ident = self._identity
        return RuleEvent(
            phase=phase,  # type: ignore[arg-type]
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
        )
