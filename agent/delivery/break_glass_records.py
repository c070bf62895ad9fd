"""The fields of the `break_glass_*` audit records, built from what the desk knows at each step.

- `break_glass_request`: a believed request, its justification included;
- `break_glass_granted` / `break_glass_refused`: a decision (the agreement's, a person's
  on the box, or a lapse), with who approved or refused on the box when a person did;
- `break_glass_refused` with `verified: false`: a message that could not be believed
  (nothing it claims is recorded, only its reason, key id and digest);
- `break_glass_ended`: a grant that ran out or was revoked, and how long it lasted.
"""

from __future__ import annotations

__all__ = ["decision_record", "ended_record", "rejected_record", "request_record"]

import hashlib
from typing import Any, Literal

from agent.alerts.request import BreakGlassRequest
from agent.delivery.break_glass_check import RequestVerdict
from agent.delivery.break_glass_table import StoredRequest


def request_record(request: BreakGlassRequest, agreement: str, kid: str, payload: bytes) -> dict[str, Any]:
    """The fields of `break_glass_request`."""
    return {
        "request_id": request.request_id,
        "recipient": request.recipient,
        "agreement": agreement,
        "incident_id": request.incident_id,
        "widen": sorted(request.widen),
        "duration_s": request.duration_s,
        "justification": request.justification,
        "operator": request.operator,
        "sent": request.sent.isoformat(),
        "kid": kid,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }


def decision_record(
    stored: StoredRequest,
) -> tuple[Literal["break_glass_granted", "break_glass_refused"], dict[str, Any]]:
    """The kind and fields of the record of a decided request."""
    fields: dict[str, Any] = {
        "request_id": stored.request_id,
        "recipient": stored.recipient,
        "agreement": stored.agreement,
        "incident_id": stored.incident_id,
    }
    if stored.state == "granted" and stored.until_utc is not None:
        fields.update(
            widen=list(stored.widen),
            until=stored.until_utc.isoformat(timespec="microseconds"),
            granted_by=stored.decided_by,
        )
        if stored.decided_as:
            fields["approved_by"] = stored.decided_as
        return "break_glass_granted", fields
    fields.update(reason=stored.reason, detail=stored.detail)
    if stored.decided_as:
        fields["refused_by"] = stored.decided_as
    return "break_glass_refused", fields


def ended_record(grant: StoredRequest) -> dict[str, Any]:
    """The fields of `break_glass_ended`: `expired` at its `until`, or `revoked` before it.

    `duration_s` is how long the grant widened sharing (from its decision to its end), whenever
    the desk came to write the record.
    """
    decided = grant.decided_utc or grant.received_utc
    until = grant.until_utc or decided
    revoked = grant.revoked_utc is not None and grant.revoked_utc < until
    stop = grant.revoked_utc if revoked and grant.revoked_utc is not None else until
    fields: dict[str, Any] = {
        "request_id": grant.request_id,
        "recipient": grant.recipient,
        "incident_id": grant.incident_id,
        "ended": "revoked" if revoked else "expired",
        "duration_s": round(max(0.0, (stop - decided).total_seconds()), 3),
    }
    if revoked and grant.revoked_as:
        fields["revoked_by"] = grant.revoked_as
    return fields


def rejected_record(verdict: RequestVerdict, payload: bytes) -> dict[str, Any]:
    """The fields of `break_glass_refused` for a message that could not be believed."""
    policy = verdict.policy
    return {
        "request_id": None,
        "recipient": verdict.recipient,
        "agreement": policy.agreement_id if policy is not None else None,
        "incident_id": None,
        "reason": verdict.reason,
        "detail": verdict.detail[:300],
        "verified": False,
        "topic_level": verdict.level,
        "kid": verdict.kid[:200],
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
    }
