"""Releases held copies on a verifier's verdict or when their hold times out, on the feedback thread.

The feedback intake hands every accepted status to `on_status`. A `verified`
or `dismissed` from the recipient an agreement names as its `verifier`
(statuses were already checked: signed by that recipient's key, about an
alert the site sent it) becomes the incident's verdict under that agreement
(`ReleaseGate.record_verdict`; the first one counts). `verified` releases
every copy of the incident held under the agreement, rendered at the
verdict's validation level with CAP certainty Observed; `dismissed`
withholds them for good. `tick` releases copies whose
`auto_release_after_s` ran out, unverified (level 2, certainty Likely).

A released copy goes the way every message goes: rendered and signed by the
dispatcher in use now (`AlertDispatcher.release`), stored in the outbox,
audited (`released`, then the message itself). A copy whose agreement has
lapsed meanwhile is withheld instead. Either way its hold is removed only
once that is done, so a failure leaves it held for the next verdict or tick.
"""

from __future__ import annotations

__all__ = ["Releaser"]

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from agent.alerts.schema import DETECTION_LEVEL
from agent.alerts.status import AlertStatus
from agent.config import PoliciesConfig
from agent.delivery.message_stores import MessageStore, withhold
from agent.delivery.release_gate import ReleaseGate, StoredHold
from agent.delivery.routing import AlertDispatcher, OutgoingAlert
from agent.delivery.sharing_terms import Verdict, Withheld
from agent.logs import log_event
from agent.privacy.audit import AuditLog

_log = logging.getLogger("agent.delivery.releaser")
_VERDICTS = ("verified", "dismissed")


class Releaser:
    """Acts on verdicts and timeouts for held copies (see the module docstring).

    Args:
        policies: the site's agreements (which recipient verifies which); `use_policies` swaps them.
        gate: the hold tables.
        dispatcher: the dispatcher in use now (the sink's, which a reload swaps).
        store: the outbox, as the sink stores into it.
        audit: the site's audit log.
    """

    def __init__(
        self,
        policies: PoliciesConfig,
        gate: ReleaseGate,
        dispatcher: Callable[[], AlertDispatcher],
        store: MessageStore,
        audit: AuditLog,
    ) -> None:
        self._policies = policies
        self._gate = gate
        self._dispatcher = dispatcher
        self._store = store
        self._audit = audit

    def use_policies(self, policies: PoliciesConfig) -> None:
        self._policies = policies

    def on_status(self, status: AlertStatus, recipient: str, received: datetime) -> None:
        """A recipient's accepted status: a verdict where it verifies an agreement."""
        if status.status not in _VERDICTS:
            return
        kind: Literal["verified", "dismissed"] = "verified" if status.status == "verified" else "dismissed"
        level = status.verified_level if kind == "verified" else DETECTION_LEVEL
        verdict = Verdict(kind, level, status.status_id, recipient)
        for agreement in self._policies.agreements:
            if agreement.release != "after_verification" or agreement.verifier != recipient:
                continue
            if not self._gate.record_verdict(status.incident_id, agreement.id, verdict, received):
                continue  # decided already: the first verdict stands
            log_event(
                _log, "incident_verdict", agreement=agreement.id, incident=status.incident_id, verdict=kind, level=level
            )
            for held in self._gate.held_for(status.incident_id, agreement.id):
                if kind == "verified":
                    self._release(held, level, "verified", status.status_id)
                else:
                    self._withhold(held, Withheld(*_ids(held), "dismissed", f"{recipient} dismissed the incident"))

    def tick(self, now: datetime) -> None:
        """Release the copies whose hold has timed out."""
        for held in self._gate.due(now):
            self._release(held, DETECTION_LEVEL, "auto_release", None)

    def _release(
        self, held: StoredHold, level: int, how: Literal["verified", "auto_release"], status_id: str | None
    ) -> None:
        copy = held.copy
        try:
            outcome = self._dispatcher().release(copy, level, how)
        except Exception as err:  # noqa: BLE001 - stays held; the next verdict or tick tries again
            log_event(_log, "release_failed", logging.ERROR, alert_id=copy.alert.identifier, error=str(err))
            return
        if outcome is None:
            log_event(
                _log, "release_dropped", logging.WARNING, alert_id=copy.alert.identifier, recipient=copy.recipient
            )
            self._gate.remove(held.row_id)
            return
        if isinstance(outcome, Withheld):
            self._withhold(held, outcome)
            return
        self._send(held, outcome, level, how, status_id)

    def _send(self, held: StoredHold, message: OutgoingAlert, level: int, how: str, status_id: str | None) -> None:
        copy = held.copy
        if not self._store.store(message):
            log_event(_log, "release_refused", logging.ERROR, alert_id=copy.alert.identifier, recipient=copy.recipient)
            return
        fields: dict[str, Any] = {
            "recipient": copy.recipient,
            "agreement": copy.agreement,
            "alert_id": copy.alert.identifier,
            "incident_id": copy.alert.detection.incident_id,
            "by": how,
            "validation_level": level,
            "status_id": status_id,
        }
        self._audit.record_event("released", **{k: v for k, v in fields.items() if v is not None})
        self._audit.record(message)
        self._gate.remove(held.row_id)
        log_event(_log, "alert_released", recipient=copy.recipient, alert_id=copy.alert.identifier, by=how, level=level)

    def _withhold(self, held: StoredHold, withheld: Withheld) -> None:
        withhold(self._gate, self._audit, held.copy.alert, withheld)
        self._gate.remove(held.row_id)


def _ids(held: StoredHold) -> tuple[str, str, str, str]:
    copy = held.copy
    return copy.alert.identifier, copy.alert.detection.incident_id, copy.recipient, copy.agreement
