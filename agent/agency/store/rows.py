"""What the store hands out: frozen rows of its tables, and the filter a search takes.

Times are seconds since the epoch (UTC). Every text field of an alert came
from a site and is untrusted: whoever shows it escapes it.
"""

from __future__ import annotations

__all__ = ["AlertFilter", "AlertRow", "IncidentRow", "SiteRow", "StatusRow", "UserRow", "row_of"]

import json
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from sqlalchemy import Row


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One stored alert (`data`: the signed payload's JSON text; `message`: the JWS as it arrived)."""

    seq: int
    site_id: str
    alert_id: str
    incident_id: str
    sent: float
    received_at: float
    expires: float
    cap_status: str
    msg_type: str | None
    phase: str | None
    severity: str | None
    severity_rank: int
    certainty: str | None
    validation_level: int
    event: str | None
    headline: str | None
    rule: str | None
    rule_kind: str | None
    zone: str | None
    line: str | None
    camera_id: str | None
    class_name: str | None
    count: int | None
    confidence: float | None
    sender_name: str | None
    area_desc: str | None
    lat: float | None
    lon: float | None
    recipient: str
    agreement: str
    kid: str
    topic: str
    has_snapshot: bool
    data: str
    message: str

    @property
    def exercise(self) -> bool:
        return self.cap_status == "Exercise"

    def payload(self) -> dict[str, Any]:
        """The signed payload as JSON data."""
        value = json.loads(self.data)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One incident of one site: its alerts summed up, and what this recipient did about it.

    `state` is the last status sent (`new` before any), `validation_level`
    the TMA-AVS-01-style level (2: detection alone; 3 once a person verified it).
    """

    site_id: str
    incident_id: str
    exercise: bool
    opened: float
    updated: float
    ended: float | None
    phase: str | None
    severity: str | None
    severity_rank: int
    certainty: str | None
    validation_level: int
    event: str | None
    headline: str | None
    rule: str | None
    rule_kind: str | None
    zone: str | None
    line: str | None
    camera_id: str | None
    class_name: str | None
    sender_name: str | None
    lat: float | None
    lon: float | None
    alert_count: int
    last_alert_id: str
    has_snapshot: bool
    expires: float
    state: str
    acknowledged: bool
    change: int


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One status this recipient sent to a site (`published`: the broker took it; else `error` says why not)."""

    id: int
    status_id: str
    site_id: str
    incident_id: str
    alert_id: str
    status: str
    disposition: str | None
    operator: str | None
    note: str | None
    sent: float
    published: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class SiteRow:
    """A site heard from: its retained state and since when, its last stats, its alerts."""

    site_id: str
    name: str | None
    state: str | None
    state_since: float | None
    stats: str | None
    stats_at: float | None
    first_alert_at: float | None
    last_alert_at: float | None

    def stats_data(self) -> dict[str, Any]:
        if not self.stats:
            return {}
        value = json.loads(self.stats)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class UserRow:
    """A console account."""

    name: str
    role: str
    password_hash: str
    created: float
    disabled: bool


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """A search over stored alerts; None leaves a criterion out.

    `state` filters on the incident's state (new, acknowledged, ..., closed).
    `exercise`: True only exercise alerts, False none, None both.
    """

    since: float | None = None
    until: float | None = None
    site_id: str | None = None
    rule: str | None = None
    severity: str | None = None
    state: str | None = None
    exercise: bool | None = None


_Row = TypeVar("_Row")


def row_of(cls: type[_Row], row: Row[Any]) -> _Row:
    """A dataclass row from an SQLAlchemy row with (at least) its fields' columns."""
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]
