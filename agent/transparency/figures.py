"""The figures of a transparency report: frozen values the counting produces and the renderers read.

Every count is of audit-log records dated inside the report's period. Sent
messages are counted per CAP status class (`Actual`, `Exercise`, `Test`, and
`unknown` for records written before the log carried `cap_status`), so a
drill or a test never inflates what was really shared. Fields older records
lack are counted under `unknown` rather than guessed.
"""

from __future__ import annotations

__all__ = [
    "CAP_CLASSES",
    "UNKNOWN",
    "AckTimes",
    "BreakGlassUse",
    "Drill",
    "DrillShare",
    "Figures",
    "Period",
    "RecipientAgreement",
    "Shared",
    "WeeklyAlerts",
]

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

UNKNOWN = "unknown"
# Order in which classes are reported; `unknown` is a log older than the `cap_status` field.
CAP_CLASSES: tuple[str, ...] = ("Actual", "Exercise", "Test", UNKNOWN)


@dataclass(frozen=True, slots=True)
class Period:
    """The days a report covers, both inclusive, in UTC.

    Raises:
        ValueError: `first` is after `last`.
    """

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"the period starts ({self.first}) after it ends ({self.last})")

    def contains(self, ts: datetime) -> bool:
        """Whether `ts` (naive means UTC) falls on a day of the period."""
        day = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC).date()
        return self.first <= day <= self.last


@dataclass(frozen=True, slots=True)
class Shared:
    """What left for one recipient under one agreement, in one CAP status class.

    Attributes:
        alerts: distinct alert ids sent.
        messages: sent-message records.
        snapshots: messages carrying a picture (faces filled or unredacted).
        personal_data: messages carrying personal data (an unredacted picture).
        snapshot_kinds: messages per `snapshot` value (none, faces-filled, unredacted, withheld, unknown).
        locations: messages per location precision (`zone_only`, `circle:<decimals>`, unknown).
        releases: messages per release (immediate, verified, auto_release, unknown).
        validation_levels: messages per validation level ("2", "3", "4", unknown).
        field_groups: messages carrying at least one field of each group (the first part of a field path).
        fields: every field path shared at least once, sorted.
        escalated: messages that were escalated copies.
        widened: messages widened by a break-glass grant.
    """

    alerts: int
    messages: int
    snapshots: int
    personal_data: int
    snapshot_kinds: Mapping[str, int]
    locations: Mapping[str, int]
    releases: Mapping[str, int]
    validation_levels: Mapping[str, int]
    field_groups: Mapping[str, int]
    fields: tuple[str, ...]
    escalated: int
    widened: int


@dataclass(frozen=True, slots=True)
class AckTimes:
    """How fast a recipient answered, from its signed statuses (seconds since the alert was published).

    Attributes:
        received: alerts with a `received` status timed.
        received_median_s / received_p90_s: of each alert's first `received` (None: none timed).
        acknowledged: alerts with a human answer timed (any status past `received`).
        acknowledged_median_s / acknowledged_p90_s: of each alert's first such answer.
    """

    received: int
    received_median_s: float | None
    received_p90_s: float | None
    acknowledged: int
    acknowledged_median_s: float | None
    acknowledged_p90_s: float | None


@dataclass(frozen=True, slots=True)
class BreakGlassUse:
    """One break-glass request and what became of it (fields its records lack in the period are None).

    Attributes:
        outcome: "granted automatically", "approved", "refused" or "pending" (no answer in the period).
        ended: "expired" or "revoked" once the grant ended.
        actual_duration_s: how long the grant lasted, once ended.
    """

    request_id: str
    requested_at: str | None
    incident_id: str | None
    widen: tuple[str, ...]
    requested_duration_s: float | None
    justification: str | None
    operator: str | None
    outcome: str
    refusal_reason: str | None
    until: str | None
    ended: str | None
    actual_duration_s: float | None


@dataclass(frozen=True, slots=True)
class DrillShare:
    """Messages one drill sent to one recipient under one agreement."""

    drill_id: str
    alerts: int
    messages: int


@dataclass(frozen=True, slots=True)
class RecipientAgreement:
    """Every figure for one recipient under one agreement (`unknown` for records without one).

    Attributes:
        agreement_digests: the agreement-term digests the messages named, sorted.
        shared: per CAP status class (all of `CAP_CLASSES`).
        withheld: alerts kept back, per reason.
        held: alerts held for a verifier's verdict.
        released: held alerts released, per how (verified, auto_release, unknown).
        break_glass: requests, oldest first.
        drills: per drill id, sorted.
        statuses: accepted statuses per status value.
        acknowledgement: per CAP status class of the alert the statuses answer.
    """

    recipient: str
    agreement: str
    agreement_digests: tuple[str, ...]
    shared: Mapping[str, Shared]
    withheld: Mapping[str, int]
    held: int
    released: Mapping[str, int]
    break_glass: tuple[BreakGlassUse, ...]
    drills: tuple[DrillShare, ...]
    statuses: Mapping[str, int]
    acknowledgement: Mapping[str, AckTimes]


@dataclass(frozen=True, slots=True)
class WeeklyAlerts:
    """Distinct `Actual` alerts shared with one recipient in each ISO week of the period (zeros included)."""

    recipient: str
    weeks: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Drill:
    """A drill run in the period (`edge-agent drill`), from its started and finished records."""

    drill_id: str
    scenario: str | None
    camera: str | None
    recipients: tuple[str, ...]
    started: str | None
    finished: str | None
    alerts: int | None
    messages: int | None


@dataclass(frozen=True, slots=True)
class Figures:
    """A whole report.

    Attributes:
        period: the days covered.
        log_records: records in the log (all of it, not only the period).
        head_seq / head_hash: the last record's `seq` and `hash` (0 and "" for an empty log).
        records_in_period: records dated inside the period.
        records_undated: records whose `ts` could not be read (skipped).
        kinds: records in the period per kind (`message` for sent messages).
        distinct_alerts: distinct alert ids sent to anyone, per CAP status class (all of `CAP_CLASSES`).
        rows: per recipient and agreement, sorted.
        weekly: per recipient, sorted.
        drills: drills started or finished in the period, oldest first.
    """

    period: Period
    log_records: int
    head_seq: int
    head_hash: str
    records_in_period: int
    records_undated: int
    kinds: Mapping[str, int]
    distinct_alerts: Mapping[str, int]
    rows: tuple[RecipientAgreement, ...]
    weekly: tuple[WeeklyAlerts, ...]
    drills: tuple[Drill, ...]

    def total(self, cap_class: str) -> Shared | None:
        """One class summed over all rows (`alerts` counts an alert once per row; see `distinct_alerts`)."""
        parts = [row.shared[cap_class] for row in self.rows if row.shared[cap_class].messages]
        if not parts:
            return None
        return Shared(
            alerts=sum(p.alerts for p in parts),
            messages=sum(p.messages for p in parts),
            snapshots=sum(p.snapshots for p in parts),
            personal_data=sum(p.personal_data for p in parts),
            snapshot_kinds=_summed(p.snapshot_kinds for p in parts),
            locations=_summed(p.locations for p in parts),
            releases=_summed(p.releases for p in parts),
            validation_levels=_summed(p.validation_levels for p in parts),
            field_groups=_summed(p.field_groups for p in parts),
            fields=tuple(sorted({f for p in parts for f in p.fields})),
            escalated=sum(p.escalated for p in parts),
            widened=sum(p.widened for p in parts),
        )

    def withheld_total(self) -> Mapping[str, int]:
        """Alerts withheld per reason over all rows."""
        return _summed(row.withheld for row in self.rows)


def _summed(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for mapping in counts:
        for key, n in mapping.items():
            total[key] = total.get(key, 0) + n
    return dict(sorted(total.items()))
