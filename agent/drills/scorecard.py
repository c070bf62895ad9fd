"""The joint-exercise scorecard: per drill and recipient, what arrived, how fast it was answered, what was missed.

Read from the audit log alone, after its chain verified (a broken chain is
refused: a scorecard is evidence, and evidence from an edited log is none).
A drill is the `drill_started` / `drill_finished` pair of its id; its alerts
are the sent-message records carrying `drill: <id>`, plus any other sent
record with CAP status `Exercise` about one of those alerts (a held copy
released later, an escalated copy, both sent by the agent's own path).
Statuses are the `status` records about those alerts from the recipient that
got them; the time of each kind is its first record's `since_published_s`.
An alert is missed when no `received` came, and unacknowledged when none of
the acknowledging statuses came (`acknowledged`, `verified`, `dismissed`,
`dispatched`, `on_scene`, `closed`).
"""

from __future__ import annotations

__all__ = ["STATUS_KINDS", "AlertScore", "DrillScore", "RecipientScore", "score_drills"]

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.delivery.feedback_ledger import ACKNOWLEDGING
from agent.errors import AgentError
from agent.privacy.audit import AuditRecord, read_records, verify_log

STATUS_KINDS = ("received", "acknowledged", "verified", "dismissed", "dispatched", "on_scene", "closed")


@dataclass(frozen=True, slots=True)
class AlertScore:
    """One drill alert at one recipient: when it was queued and how long each status took (seconds)."""

    alert_id: str
    incident_id: str
    phase: str
    queued: str
    status_s: dict[str, float]

    @property
    def missed(self) -> bool:
        return "received" not in self.status_s

    @property
    def unacknowledged(self) -> bool:
        return not ACKNOWLEDGING & self.status_s.keys()


@dataclass(frozen=True, slots=True)
class RecipientScore:
    recipient: str
    alerts: tuple[AlertScore, ...]

    def times(self, kind: str) -> list[float]:
        return [a.status_s[kind] for a in self.alerts if kind in a.status_s]

    def summary(self, kind: str) -> dict[str, float | int | None]:
        t = self.times(kind)
        return {
            "count": len(t),
            "median_s": round(statistics.median(t), 3) if t else None,
            "max_s": round(max(t), 3) if t else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient,
            "alerts": len(self.alerts),
            "statuses": {k: self.summary(k) for k in STATUS_KINDS},
            "missed": [a.alert_id for a in self.alerts if a.missed],
            "unacknowledged": [a.alert_id for a in self.alerts if a.unacknowledged],
            "per_alert": [
                {
                    "alert_id": a.alert_id,
                    "incident_id": a.incident_id,
                    "phase": a.phase,
                    "queued": a.queued,
                    "status_s": a.status_s,
                }
                for a in self.alerts
            ],
        }


@dataclass(frozen=True, slots=True)
class DrillScore:
    drill_id: str
    scenario: str
    camera: str
    started: str
    finished: str
    state: str
    messages: int
    recipients: tuple[RecipientScore, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "drill_id": self.drill_id,
            "scenario": self.scenario,
            "camera": self.camera,
            "started": self.started,
            "finished": self.finished,
            "state": self.state,
            "messages": self.messages,
            "recipients": [r.to_json() for r in self.recipients],
        }


def score_drills(
    path: Path, *, drill_id: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[DrillScore]:
    """The scorecard of every drill in the log that started in [since, until) (see the module docstring).

    Raises:
        AgentError: the log is missing or its chain does not verify.
    """
    if not Path(path).is_file():
        raise AgentError(f"no audit log at {path}")
    count, issue = verify_log(Path(path))
    if issue is not None:
        raise AgentError(
            f"audit log {path} does not verify ({issue}, after {count} good records): no scorecard from it"
        )
    records = list(read_records(Path(path)))
    starts = [r for r in records if r.data.get("kind") == "drill_started"]
    wanted = [
        r
        for r in starts
        if (drill_id is None or r.data.get("drill_id") == drill_id)
        and (since is None or (r.ts is not None and r.ts >= since))
        and (until is None or (r.ts is not None and r.ts < until))
    ]
    return [_score(start, records) for start in wanted]


def _score(start: AuditRecord, records: list[AuditRecord]) -> DrillScore:
    d = start.data
    drill = str(d.get("drill_id"))
    finish = next(
        (r.data for r in records if r.data.get("kind") == "drill_finished" and r.data.get("drill_id") == drill), {}
    )
    sent = [r.data for r in records if r.data.get("kind") is None and r.data.get("drill") == drill]
    alert_ids = {str(s.get("alert_id")) for s in sent}
    sent += [
        r.data
        for r in records
        if r.data.get("kind") is None
        and "drill" not in r.data
        and r.data.get("cap_status") == "Exercise"
        and r.data.get("alert_id") in alert_ids
    ]
    statuses: dict[tuple[str, str], dict[str, float]] = {}
    for r in records:
        s = r.data
        if s.get("kind") != "status" or s.get("alert_id") not in alert_ids:
            continue
        kinds = statuses.setdefault((str(s.get("alert_id")), str(s.get("recipient"))), {})
        kind, since_s = str(s.get("status")), s.get("since_published_s")
        if kind not in kinds and isinstance(since_s, int | float):
            kinds[kind] = float(since_s)
    names = [str(n) for n in d.get("recipients", [])]
    names += sorted({str(s.get("recipient")) for s in sent} - set(names))
    scores = []
    for name in names:
        alerts: dict[str, AlertScore] = {}
        for s in sent:
            aid = str(s.get("alert_id"))
            if s.get("recipient") == name and aid not in alerts:
                alerts[aid] = AlertScore(
                    aid, str(s.get("incident_id", "")), str(s.get("phase", "")), str(s.get("ts", "")),
                    dict(statuses.get((aid, name), {})),
                )  # fmt: skip
        scores.append(RecipientScore(name, tuple(alerts.values())))
    return DrillScore(
        drill,
        str(d.get("scenario", "")),
        str(d.get("camera", "")),
        str(d.get("ts", "")),
        str(finish.get("ts", "")),
        str(finish.get("state", "unfinished" if not finish else "finished")),
        len(sent),
        tuple(scores),
    )
