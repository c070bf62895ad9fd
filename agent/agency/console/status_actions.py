"""Sending a status from the console: who may send which, making it, signing and publishing it, recording it.

"Route, sign, store, audit" happens here and nowhere else in the console:

1. the user's role must allow the status (`STATUSES_BY_ROLE`: the agency's
   analyst acknowledges, dispatches, reports on scene and closes; the control
   room's operator acknowledges, verifies or dismisses);
2. the status is made for the incident's newest alert with the user as
   operator (`StatusSigner.make`: a fresh UUIDv7, the schema's checks);
3. `send_status` (`agent.agency.status_sender.broker_publisher`) signs and publishes it to the site's feedback topic; it
   raises `AgentError` when the broker could not be reached or refused it;
4. it is recorded with `StoreWriter.add_status`, published or not, so the
   incident's history shows failed sends too (a failed one does not move
   the incident's state);
5. the console's audit log gets a `console_status_sent` record.

Without `status_key` in the config there is no signer: nothing can be sent,
and the pages show the buttons disabled with `disabled_reason`.
"""

from __future__ import annotations

__all__ = ["STATUSES_BY_ROLE", "StatusActions", "StatusRefused", "StatusResult"]

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from agent.agency.status_sender import SendStatus, StatusSigner
from agent.agency.store import IncidentRow, StoreWriter
from agent.alerts.status import DISPOSITIONS, AlertStatus
from agent.errors import AgentError
from agent.logs import log_event
from agent.privacy.audit import AuditLog

_log = logging.getLogger("agent.agency.console")

# Protocol v2 statuses a person sends (`received` is the ingest service's own), in the order they happen.
STATUSES_BY_ROLE: Final[dict[str, tuple[str, ...]]] = {
    "analyst": ("acknowledged", "dispatched", "on_scene", "closed"),
    "operator": ("acknowledged", "verified", "dismissed"),
}


@dataclass(frozen=True, slots=True)
class StatusResult:
    """A status the console made and tried to publish (`error` says why it was not published)."""

    status_id: str
    status: str
    disposition: str | None
    published: bool
    error: str | None


class StatusRefused(AgentError):
    """A status the console will not send.

    Attributes:
        http_status: 403 (the role may not), 409 (no status key), 422 (a value refused).
    """

    def __init__(self, message: str, *, http_status: int) -> None:
        self.http_status = http_status
        super().__init__(message)


class StatusActions:
    """Sends statuses for console users (see the module docstring).

    Args:
        signer: makes (and names the recipient of) statuses; None when no status key is configured.
        send: publishes a made status; raises `AgentError` when it could not.
        writer: records every status sent.
        audit: the console's audit log.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        *,
        signer: StatusSigner | None,
        send: SendStatus | None,
        writer: StoreWriter,
        audit: AuditLog,
        clock: Callable[[], float],
    ) -> None:
        self._signer = signer
        self._send = send
        self._writer = writer
        self._audit = audit
        self._clock = clock

    @property
    def disabled_reason(self) -> str | None:
        """Why no status can be sent, or None when statuses can be sent."""
        if self._signer is None or self._send is None:
            return "statuses cannot be sent: the receiving config has no status_key to sign them with"
        return None

    @staticmethod
    def allowed(role: str) -> tuple[str, ...]:
        """The statuses `role` may send, in the order they happen."""
        return STATUSES_BY_ROLE.get(role, ())

    def send(
        self,
        *,
        operator: str,
        role: str,
        incident: IncidentRow,
        status: str,
        disposition: str | None = None,
        note: str | None = None,
        level: int | None = None,
    ) -> StatusResult:
        """Make, publish, record and audit one status about `incident`'s newest alert.

        Raises:
            StatusRefused: the role may not send it, nothing can be signed, or a value the schema refuses.
            AgentError: the store or the audit log could not be written.
        """
        if status not in self.allowed(role):
            raise StatusRefused(f"the {role} role may not send {status}", http_status=403)
        signer, publish = self._signer, self._send
        if signer is None or publish is None:
            raise StatusRefused(self.disabled_reason or "statuses cannot be sent", http_status=409)
        made = self._make(signer, operator, incident, status, disposition, note, level)
        published, error = True, None
        try:
            publish(made)
        except (AgentError, OSError) as err:
            published, error = False, str(err) or type(err).__name__
            log_event(_log, "console_status_not_published", logging.WARNING, status_id=made.status_id, error=error)
        self._writer.add_status(made, published=published, error=error)
        self._audit.record_event(
            "console_status_sent",
            user=operator,
            site_id=made.site_id,
            incident_id=made.incident_id,
            alert_id=made.alert_id,
            status=made.status,
            disposition=made.disposition,
            status_id=made.status_id,
            published=published,
            error=error,
        )
        return StatusResult(made.status_id, made.status, made.disposition, published, error)

    def _make(
        self,
        signer: StatusSigner,
        operator: str,
        incident: IncidentRow,
        status: str,
        disposition: str | None,
        note: str | None,
        level: int | None = None,
    ) -> AlertStatus:
        disposition = (disposition or None) if status == "closed" else None
        if status == "closed" and disposition not in DISPOSITIONS:
            choices = ", ".join(DISPOSITIONS)
            raise StatusRefused(f"closing an incident needs a disposition: one of {choices}", http_status=422)
        try:
            return signer.make(
                site_id=incident.site_id,
                alert_id=incident.last_alert_id,
                incident_id=incident.incident_id,
                status=status,
                disposition=disposition,
                note=(note or "").strip() or None,
                operator=operator,
                sent=datetime.fromtimestamp(self._clock(), UTC),
                # The operator's verdict (3: property, 4: life) goes with `verified` only.
                validation_level=level if status == "verified" else None,
            )
        except AgentError as err:
            raise StatusRefused(str(err), http_status=422) from None
