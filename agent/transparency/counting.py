"""Counting a transparency report: audit-log records in, `Figures` out (a pure function, no I/O).

One pass over the records in log order. Records dated outside the period
are skipped (they still count towards the log's size and head). A status
answers a message, so it is filed under the agreement and CAP status class
of the message that carried its alert to that recipient; one whose message
is not in the period is filed under `unknown`. Break-glass records are
joined by request id, drill records by drill id, both within the period.
"""

from __future__ import annotations

__all__ = ["count_figures"]

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from agent.transparency.figures import (
    CAP_CLASSES,
    UNKNOWN,
    AckTimes,
    BreakGlassUse,
    Drill,
    DrillShare,
    Figures,
    Period,
    RecipientAgreement,
    Shared,
    WeeklyAlerts,
)

_SNAPSHOTS = frozenset({"none", "faces-filled", "unredacted", "withheld"})
_PICTURES = frozenset({"faces-filled", "unredacted"})
_RELEASES = frozenset({"immediate", "verified", "auto_release"})
_BREAK_GLASS = frozenset({"break_glass_request", "break_glass_granted", "break_glass_refused", "break_glass_ended"})


def count_figures(records: Iterable[Mapping[str, Any]], period: Period) -> Figures:
    """The report's figures for `records` (the log's records in order, as parsed JSON objects)."""
    tally = _Tally(period)
    for data in records:
        tally.add(data)
    return tally.figures()


def _text(value: Any) -> str:
    """A field as report text: strings as they are, a missing or empty field as `unknown`."""
    if value is None or value == "":
        return UNKNOWN
    return value if isinstance(value, str) else str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _timestamp(value: Any) -> datetime | None:
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _median_p90(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    # "inclusive": the 90th percentile lies within the observed values (linear interpolation).
    return statistics.median(values), statistics.quantiles(values, n=10, method="inclusive")[-1]


class _SharedTally:
    """Sent messages of one row and one CAP status class, as they are counted."""

    def __init__(self) -> None:
        self.alerts: set[str] = set()
        self.messages = self.snapshots = self.personal_data = self.escalated = self.widened = 0
        self.snapshot_kinds: Counter[str] = Counter()
        self.locations: Counter[str] = Counter()
        self.releases: Counter[str] = Counter()
        self.levels: Counter[str] = Counter()
        self.groups: Counter[str] = Counter()
        self.fields: set[str] = set()

    def add(self, d: Mapping[str, Any]) -> None:
        self.alerts.add(_text(d.get("alert_id")))
        self.messages += 1
        snapshot = d.get("snapshot")
        self.snapshot_kinds[snapshot if snapshot in _SNAPSHOTS else UNKNOWN] += 1
        self.snapshots += snapshot in _PICTURES
        self.personal_data += d.get("personal_data") is True
        self.escalated += bool(d.get("escalated_from"))
        self.widened += bool(d.get("break_glass"))
        self.locations[_text(d.get("location"))] += 1
        release = d.get("release")
        self.releases[release if release in _RELEASES else UNKNOWN] += 1
        level = d.get("validation_level")
        self.levels[str(level) if level in (2, 3, 4) else UNKNOWN] += 1
        fields = d.get("shared_fields")
        if not isinstance(fields, list):
            self.groups[UNKNOWN] += 1
            return
        paths = {str(f) for f in fields}
        self.fields |= paths
        self.groups.update({p.split(".", 1)[0] for p in paths})

    def freeze(self) -> Shared:
        return Shared(
            alerts=len(self.alerts),
            messages=self.messages,
            snapshots=self.snapshots,
            personal_data=self.personal_data,
            snapshot_kinds=dict(sorted(self.snapshot_kinds.items())),
            locations=dict(sorted(self.locations.items())),
            releases=dict(sorted(self.releases.items())),
            validation_levels=dict(sorted(self.levels.items())),
            field_groups=dict(sorted(self.groups.items())),
            fields=tuple(sorted(self.fields)),
            escalated=self.escalated,
            widened=self.widened,
        )


class _RowTally:
    """Everything counted for one recipient and agreement."""

    def __init__(self) -> None:
        self.digests: set[str] = set()
        self.shared: defaultdict[str, _SharedTally] = defaultdict(_SharedTally)
        self.withheld: Counter[str] = Counter()
        self.held = 0
        self.released: Counter[str] = Counter()
        self.drills: defaultdict[str, tuple[set[str], list[int]]] = defaultdict(lambda: (set(), [0]))
        self.statuses: Counter[str] = Counter()
        # class -> alert id -> [first `received` time, first later answer's time]
        self.answers: defaultdict[str, dict[str, list[float | None]]] = defaultdict(dict)

    def add_status(self, cap_class: str, alert_id: str, status: str, since_s: float | None) -> None:
        self.statuses[status] += 1
        if since_s is None:
            return
        first = self.answers[cap_class].setdefault(alert_id, [None, None])
        slot = 0 if status == "received" else 1
        if first[slot] is None:
            first[slot] = since_s

    def ack_times(self, cap_class: str) -> AckTimes:
        answers = self.answers.get(cap_class, {}).values()
        received = [a[0] for a in answers if a[0] is not None]
        acknowledged = [a[1] for a in answers if a[1] is not None]
        r_median, r_p90 = _median_p90(received)
        a_median, a_p90 = _median_p90(acknowledged)
        return AckTimes(len(received), r_median, r_p90, len(acknowledged), a_median, a_p90)


class _Tally:
    """The state of one counting pass."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self.log_records = self.head_seq = self.in_period = self.undated = 0
        self.head_hash = ""
        self.kinds: Counter[str] = Counter()
        self.rows: defaultdict[tuple[str, str], _RowTally] = defaultdict(_RowTally)
        self.weekly: defaultdict[str, defaultdict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.sent_to: dict[tuple[str, str], tuple[str, str]] = {}
        self.distinct: defaultdict[str, set[str]] = defaultdict(set)
        self.statuses: list[tuple[str, str, str, float | None]] = []
        self.break_glass: dict[str, dict[str, Any]] = {}
        self.drills: dict[str, dict[str, Any]] = {}

    def add(self, d: Mapping[str, Any]) -> None:
        self.log_records += 1
        seq = d.get("seq")
        self.head_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else self.head_seq
        self.head_hash = str(d.get("hash", ""))
        ts = _timestamp(d.get("ts"))
        if ts is None:
            self.undated += 1
            return
        if not self.period.contains(ts):
            return
        self.in_period += 1
        kind = d.get("kind") or ("message" if "message_id" in d else UNKNOWN)
        self.kinds[_text(kind)] += 1
        if kind == "message":
            self._message(d, ts)
        elif kind in ("withheld", "held", "released"):
            self._hold(kind, d)
        elif kind == "status":
            since = _number(d.get("since_published_s"))
            self.statuses.append((_text(d.get("recipient")), _text(d.get("alert_id")), _text(d.get("status")), since))
        elif kind in _BREAK_GLASS:
            self._break_glass(kind, d)
        elif kind in ("drill_started", "drill_finished"):
            self._drill(kind, d)

    def _row(self, d: Mapping[str, Any]) -> _RowTally:
        return self.rows[(_text(d.get("recipient")), _text(d.get("agreement")))]

    def _message(self, d: Mapping[str, Any], ts: datetime) -> None:
        status = d.get("cap_status")
        cap_class = status if isinstance(status, str) and status in CAP_CLASSES[:-1] else UNKNOWN
        row = self._row(d)
        row.shared[cap_class].add(d)
        if d.get("agreement_digest"):
            row.digests.add(str(d["agreement_digest"]))
        recipient, alert_id = _text(d.get("recipient")), _text(d.get("alert_id"))
        self.distinct[cap_class].add(alert_id)
        self.sent_to.setdefault((recipient, alert_id), (_text(d.get("agreement")), cap_class))
        if d.get("drill"):
            alerts, messages = row.drills[str(d["drill"])]
            alerts.add(alert_id)
            messages[0] += 1
        if cap_class == "Actual":
            self.weekly[recipient][_iso_week(ts.astimezone(UTC).date())].add(alert_id)

    def _hold(self, kind: str, d: Mapping[str, Any]) -> None:
        row = self._row(d)
        if kind == "withheld":
            row.withheld[_text(d.get("reason"))] += 1
        elif kind == "held":
            row.held += 1
        else:
            by = d.get("by")
            row.released[by if by in ("verified", "auto_release") else UNKNOWN] += 1

    def _break_glass(self, kind: str, d: Mapping[str, Any]) -> None:
        use = self.break_glass.setdefault(_text(d.get("request_id")), {})
        for key in ("recipient", "agreement", "incident_id"):
            if d.get(key) and key not in use:
                use[key] = str(d[key])
        if kind == "break_glass_request":
            use.update(
                requested_at=str(d.get("ts")),
                widen=d.get("widen"),
                duration_s=_number(d.get("duration_s")),
                justification=_optional_text(d.get("justification")),
                operator=_optional_text(d.get("operator")),
            )
        elif kind == "break_glass_granted":
            by = d.get("granted_by")
            use["outcome"] = "granted automatically" if by == "automatic" else "approved" if by == "approved" else None
            use["outcome"] = use["outcome"] or f"granted ({_text(by)})"
            use["until"] = _optional_text(d.get("until"))
            use.setdefault("widen", d.get("widen"))
        elif kind == "break_glass_refused":
            use.update(outcome="refused", refusal_reason=_optional_text(d.get("reason")))
        else:
            use.update(ended=_optional_text(d.get("ended")), actual_duration_s=_number(d.get("duration_s")))

    def _drill(self, kind: str, d: Mapping[str, Any]) -> None:
        drill = self.drills.setdefault(_text(d.get("drill_id")), {})
        for key in ("scenario", "camera"):
            drill[key] = _optional_text(d.get(key)) or drill.get(key)
        if isinstance(d.get("recipients"), list):
            drill["recipients"] = tuple(str(r) for r in d["recipients"])
        if kind == "drill_started":
            drill["started"] = str(d.get("ts"))
        else:
            drill.update(
                finished=str(d.get("ts")), alerts=_number(d.get("alerts")), messages=_number(d.get("messages"))
            )

    def figures(self) -> Figures:
        for recipient, alert_id, status, since in self.statuses:
            agreement, cap_class = self.sent_to.get((recipient, alert_id), (UNKNOWN, UNKNOWN))
            self.rows[(recipient, agreement)].add_status(cap_class, alert_id, status, since)
        uses: defaultdict[tuple[str, str], list[BreakGlassUse]] = defaultdict(list)
        for request_id, use in self.break_glass.items():
            uses[(use.get("recipient", UNKNOWN), use.get("agreement", UNKNOWN))].append(
                _break_glass_use(request_id, use)
            )
        for key in uses:  # a break-glass use makes its row exist even with nothing else in it
            self.rows.setdefault(key, _RowTally())
        return Figures(
            period=self.period,
            log_records=self.log_records,
            head_seq=self.head_seq,
            head_hash=self.head_hash,
            records_in_period=self.in_period,
            records_undated=self.undated,
            kinds=dict(sorted(self.kinds.items())),
            distinct_alerts={c: len(self.distinct.get(c, ())) for c in CAP_CLASSES},
            rows=tuple(_freeze_row(key, row, uses.get(key, [])) for key, row in sorted(self.rows.items())),
            weekly=self._weekly(),
            drills=tuple(_drill(drill_id, drill) for drill_id, drill in self.drills.items()),
        )

    def _weekly(self) -> tuple[WeeklyAlerts, ...]:
        weeks: dict[str, None] = {}
        day = self.period.first
        while day <= self.period.last:
            weeks[_iso_week(day)] = None
            day += timedelta(days=7)
        weeks[_iso_week(self.period.last)] = None
        return tuple(
            WeeklyAlerts(recipient, tuple((week, len(per_week.get(week, ()))) for week in weeks))
            for recipient, per_week in sorted(self.weekly.items())
        )


def _freeze_row(key: tuple[str, str], row: _RowTally, uses: list[BreakGlassUse]) -> RecipientAgreement:
    return RecipientAgreement(
        recipient=key[0],
        agreement=key[1],
        agreement_digests=tuple(sorted(row.digests)),
        shared={c: (row.shared[c] if c in row.shared else _SharedTally()).freeze() for c in CAP_CLASSES},
        withheld=dict(sorted(row.withheld.items())),
        held=row.held,
        released=dict(sorted(row.released.items())),
        break_glass=tuple(uses),
        drills=tuple(DrillShare(i, len(a), m[0]) for i, (a, m) in sorted(row.drills.items())),
        statuses=dict(sorted(row.statuses.items())),
        acknowledgement={c: row.ack_times(c) for c in CAP_CLASSES},
    )


def _break_glass_use(request_id: str, use: Mapping[str, Any]) -> BreakGlassUse:
    widen = use.get("widen")
    return BreakGlassUse(
        request_id=request_id,
        requested_at=use.get("requested_at"),
        incident_id=use.get("incident_id"),
        widen=tuple(str(w) for w in widen) if isinstance(widen, list) else (),
        requested_duration_s=use.get("duration_s"),
        justification=use.get("justification"),
        operator=use.get("operator"),
        outcome=use.get("outcome") or "pending",
        refusal_reason=use.get("refusal_reason"),
        until=use.get("until"),
        ended=use.get("ended"),
        actual_duration_s=use.get("actual_duration_s"),
    )


def _drill(drill_id: str, drill: Mapping[str, Any]) -> Drill:
    alerts, messages = drill.get("alerts"), drill.get("messages")
    return Drill(
        drill_id=drill_id,
        scenario=drill.get("scenario"),
        camera=drill.get("camera"),
        recipients=drill.get("recipients", ()),
        started=drill.get("started"),
        finished=drill.get("finished"),
        alerts=None if alerts is None else int(alerts),
        messages=None if messages is None else int(messages),
    )
