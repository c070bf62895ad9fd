"""Signed notices to the site's owner about break-glass requests, sent through the durable outbox.

Each step of a request the owner must know about (waiting for their
approval, granted, refused, ended) becomes one `BreakGlassNotice`, signed
as a JWS with the site's own key (`typ` `edge-notice+json`, the key and key
id that sign its alerts, so whatever trusts the site's alerts can check its
notices) and put in the outbox for `<prefix>/<site>/notifications`, QoS 1.
Going through the outbox, a notice survives a broker outage and a restart
like an alert does. What a notice says is already in the audit chain (the
`break_glass_*` records); the notice is how the owner hears of it now.
"""

from __future__ import annotations

__all__ = ["NOTICE_SEVERITY_RANK", "NoticeSender"]

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from agent.alerts.ids import Uuid7Factory
from agent.alerts.request import TYP_NOTICE, BreakGlassNotice
from agent.delivery.break_glass_table import StoredRequest
from agent.delivery.jws import key_id_for, sign_envelope
from agent.delivery.messages import OutboundMessage
from agent.delivery.topics import notifications_topic
from agent.errors import AgentError
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.break_glass")
# The outbox drops the lowest rank first when full: a notice of widened sharing goes last, with Extreme alerts.
NOTICE_SEVERITY_RANK = 3


class NoticeSender:
    """Makes, signs and queues notices for one site.

    Args:
        site_id: this site.
        prefix: the MQTT topic prefix.
        key: the site's signing key.
        put: the outbox's `put` (True when the message was accepted).
        kid: key id in the header (`signing.key_id`); default the key's RFC 7638 thumbprint.
        expiry_s: MQTT expiry of a notice (`mqtt.message_expiry_s`).
    """

    def __init__(
        self,
        *,
        site_id: str,
        prefix: str,
        key: Ed25519PrivateKey,
        put: Callable[[OutboundMessage], bool],
        kid: str | None = None,
        expiry_s: int | None = None,
    ) -> None:
        self._site_id = site_id
        self._topic = notifications_topic(prefix, site_id)
        self._key = key
        self._kid = kid or key_id_for(key.public_key())
        self._put = put
        self._expiry_s = expiry_s
        self._ids = Uuid7Factory()

    def send(self, event: str, request: StoredRequest, now: datetime, **fields: Any) -> bool:
        """Queue the notice of `event` about `request`; False (logged) when it could not be made or stored.

        Args:
            event: pending, granted, refused or ended.
            request: the request as the table holds it.
            now: when the notice is sent.
            fields: the event's own fields (`until`, `granted_by`, `reason`, `ended`, `duration_s`).
        """
        try:
            notice = BreakGlassNotice.model_validate(
                {
                    "notice_id": self._ids.new(now),
                    "site_id": self._site_id,
                    "event": event,
                    "request_id": request.request_id,
                    "recipient": request.recipient,
                    "incident_id": request.incident_id,
                    "widen": list(request.widen),
                    "duration_s": float(request.duration_s),
                    "sent": now,
                    "justification": request.justification,
                    "operator": request.operator,
                    **fields,
                }
            )
            payload = sign_envelope(notice.to_json_bytes(), self._key, self._kid, TYP_NOTICE)
            # Expiry counts from the outbox's own clock, as an alert's does.
            message = OutboundMessage.for_payload(self._topic, payload, NOTICE_SEVERITY_RANK, self._expiry_s)
            if self._put(message):
                return True
            detail = "the outbox did not accept it"
        except (ValidationError, AgentError, OSError) as err:
            detail = f"{type(err).__name__}: {err}"[:300]
        log_event(
            _log, "break_glass_notice_failed", logging.ERROR, request_id=request.request_id, notice=event, error=detail
        )
        return False
