"""The value rules emit: one step in an incident's life."""

from __future__ import annotations

__all__ = ["RuleEvent"]

from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A rule's incident started, changed meaningfully, or ended.

    Attributes:
        phase: start, update or end.
        incident_key: the rule's own counter of incidents (1, 2, ...); the
            alert builder maps it to a published incident id.
        rule: rule name. rule_kind: intrusion, loitering, ...
        zone, line: the zone or line the rule watches (one of them).
        class_name: class of the objects counted.
        count: objects satisfying the rule now (0 at the end).
        dwell_s: longest time one of them has satisfied it.
        confidence: highest detection score among them over the incident.
        first_seen_utc, last_seen_utc: span of the incident so far.
        ts_utc: time of the frame that produced the event.
        severity: CAP severity from the rule's config.
        direction: for line rules, A_to_B or B_to_A (None for zone rules).

    For line rules `count` is the number of crossings in the incident so far
    (the end repeats the total), and `dwell_s` is 0.
    """

    phase: Literal["start", "update", "end"]
    incident_key: int
    rule: str
    rule_kind: str
    zone: str | None
    line: str | None
    class_name: str
    count: int
    dwell_s: float
    confidence: float
    first_seen_utc: datetime
    last_seen_utc: datetime
    ts_utc: datetime
    severity: str
    direction: str | None = None
