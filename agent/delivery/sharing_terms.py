"""What a recipient's agreement decides about one copy of an alert: send it, hold it, or withhold it.

The dispatcher asks `decide` once per recipient and alert, before rendering:

- an agreement that is not in force (`valid_from`/`valid_until`) withholds
  the copy: it is kept locally, audited as `withheld` with the reason, never
  sent;
- `release: after_verification` holds it until the agreement's verifier has
  given a verdict on the incident (`Verdicts`): `verified` sends it, and every
  later alert of the incident, raised to the verdict's validation level
  (`verified_copy`); `dismissed` withholds them for good; a severity in
  `never_held` goes at once;
- otherwise it goes at once, as built (validation level 2).

A break-glass grant (`Grants`) widens what one recipient sees of one
incident for a while: `widened` gives the recipient policy the copy is
rendered with (snapshots on with faces filled, location to 5 decimals).
"""

from __future__ import annotations

__all__ = [
    "Decision",
    "Grants",
    "HeldCopy",
    "TermsTables",
    "Verdict",
    "Verdicts",
    "Widening",
    "Withheld",
    "decide",
    "held_record",
    "verified_copy",
    "widened",
    "withheld_record",
]

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from agent.alerts.schema import DETECTION_LEVEL, Alert
from agent.config import RecipientPolicy
from agent.config.agreements import Agreement
from agent.privacy.snapshots import Snapshot

Release = Literal["immediate", "verified", "auto_release"]
EXACT_DECIMALS = 5  # about a metre: what "exact location" means in a grant


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verifier's signed verdict on an incident.

    Attributes:
        kind: "verified" or "dismissed".
        level: the validation level a `verified` gave (3 or 4); 2 with `dismissed`.
        status_id: the status that carried it.
        verifier: the recipient that sent it.
    """

    kind: Literal["verified", "dismissed"]
    level: int
    status_id: str
    verifier: str


class Verdicts(Protocol):
    """Where verdicts are kept (`agent.delivery.release_gate.ReleaseGate`)."""

    def verdict(self, incident_id: str, agreement_id: str) -> Verdict | None: ...


@dataclass(frozen=True, slots=True)
class Widening:
    """A break-glass grant in force for one recipient and incident."""

    grant_id: str
    widen: frozenset[str]


class Grants(Protocol):
    """Where break-glass grants are kept."""

    def widening(self, recipient: str, incident_id: str, now: datetime) -> Widening | None: ...


@dataclass(frozen=True, slots=True)
class TermsTables:
    """Where the live agent keeps verdicts and grants; a replay has neither (nothing held, nothing widened)."""

    verdicts: Verdicts | None = None
    grants: Grants | None = None


@dataclass(frozen=True, slots=True)
class Withheld:
    """A copy not sent: for whom, under which agreement, and why (audited as `withheld`)."""

    alert_id: str
    incident_id: str
    recipient: str
    agreement: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class HeldCopy:
    """A copy waiting for its agreement's verifier: the alert as built and the picture its recipient may get."""

    alert: Alert
    recipient: str
    agreement: str
    verifier: str
    auto_release_after_s: float | None
    snapshot: Snapshot | None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one copy; `release` and `level` apply when it is sent."""

    action: Literal["send", "hold", "withhold"]
    release: Release = "immediate"
    level: int = DETECTION_LEVEL
    reason: str = ""
    detail: str = ""


_SEND = Decision("send")


def decide(agreement: Agreement | None, alert: Alert, now: datetime, verdicts: Verdicts | None) -> Decision:
    """What the agreement says about sending `alert` now (see the module docstring)."""
    if agreement is None:
        return _SEND
    state = agreement.state(now)
    if state == "expired":
        return Decision("withhold", reason="agreement_expired", detail=f"agreement {agreement.id} has ended")
    if state == "not_yet_valid":
        return Decision("withhold", reason="agreement_not_yet_valid", detail=f"agreement {agreement.id} not begun")
    if agreement.release == "immediate" or verdicts is None:
        return _SEND
    verdict = verdicts.verdict(alert.detection.incident_id, agreement.id)
    if verdict is None:
        return _SEND if alert.info.severity in agreement.never_held else Decision("hold")
    if verdict.kind == "dismissed":
        return Decision("withhold", reason="dismissed", detail=f"{verdict.verifier} dismissed the incident")
    return Decision("send", release="verified", level=verdict.level)


def verified_copy(alert: Alert, level: int) -> Alert:
    """The alert as a person verified it: its validation level, and CAP certainty Observed above level 2."""
    if level <= DETECTION_LEVEL:
        return alert
    info = alert.info.model_copy(update={"certainty": "Observed"})
    return alert.model_copy(update={"validation_level": level, "info": info})


def widened(recipient: RecipientPolicy, widening: Widening | None) -> RecipientPolicy:
    """The recipient's policy with a break-glass grant's widening applied (itself without one)."""
    if widening is None:
        return recipient
    update: dict[str, object] = {}
    if "exact_location" in widening.widen:
        update.update(location="circle", location_decimals=EXACT_DECIMALS)
    if "snapshots" in widening.widen and not recipient.snapshots.enabled:
        # Faces stay filled: a grant widens what is shown, never the redaction.
        update["snapshots"] = recipient.snapshots.model_copy(update={"enabled": True})
    return recipient.model_copy(update=update) if update else recipient


def held_record(copy: HeldCopy) -> dict[str, Any]:
    """The fields of a `held` audit record."""
    alert = copy.alert
    return {
        "recipient": copy.recipient,
        "agreement": copy.agreement,
        "alert_id": alert.identifier,
        "incident_id": alert.detection.incident_id,
        "rule": alert.detection.rule,
        "severity": alert.info.severity,
        "cap_status": alert.status,
        "verifier": copy.verifier,
        "auto_release_after_s": copy.auto_release_after_s,
    }


def withheld_record(alert: Alert, withheld: Withheld) -> dict[str, Any]:
    """The fields of a `withheld` audit record."""
    return {
        "recipient": withheld.recipient,
        "agreement": withheld.agreement,
        "alert_id": withheld.alert_id,
        "incident_id": withheld.incident_id,
        "rule": alert.detection.rule,
        "severity": alert.info.severity,
        "cap_status": alert.status,
        "reason": withheld.reason,
        "detail": withheld.detail,
    }
