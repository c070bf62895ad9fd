"""Where the delivery sink puts what it routed: messages (the outbox, a JSONL file) and held copies.

`MessageStore` is the one interface a message goes through on its way out:
the durable outbox for `run` and `replay --publish` (`OutboxStore`), a JSONL
file of signed payloads for `replay` (`JsonlStore`). `HoldStore` keeps the
copies an agreement holds for verification or withholds
(`agent.delivery.release_gate.ReleaseGate`).
"""

from __future__ import annotations

__all__ = ["HoldStore", "JsonlStore", "MessageStore", "OutboxStore", "withhold"]

import logging
from typing import TYPE_CHECKING, Protocol, TextIO

from agent.alerts.schema import Alert
from agent.delivery.outbox import Outbox
from agent.delivery.sharing_terms import HeldCopy, Withheld, withheld_record
from agent.logs import log_event
from agent.privacy.audit import AuditLog

if TYPE_CHECKING:
    from agent.delivery.routing import OutgoingAlert

_log = logging.getLogger("agent.delivery.withheld")


class HoldStore(Protocol):
    """Where held and withheld copies are kept (`agent.delivery.release_gate.ReleaseGate`)."""

    def hold(self, copy: HeldCopy) -> None: ...
    def keep_withheld(self, alert: Alert, withheld: Withheld) -> None: ...


class MessageStore(Protocol):
    """Where the sink puts each message."""

    def store(self, message: OutgoingAlert) -> bool:
        """Keep `message`; True when accepted (it will leave the box, so it is audited)."""
        ...


class OutboxStore:
    """Messages into the durable outbox (`Outbox.put`: committed and fsynced before it returns).

    Args:
        outbox: the open outbox.
        default_expiry_s: MQTT expiry of a message whose recipient asks for none.
    """

    def __init__(self, outbox: Outbox, *, default_expiry_s: int | None) -> None:
        self._outbox = outbox
        self._default_expiry_s = default_expiry_s

    def store(self, message: OutgoingAlert) -> bool:
        return self._outbox.put(message.to_outbound(self._default_expiry_s))


class JsonlStore:
    """Each message's signed payload as one line of a text file (what `edge-agent replay` writes).

    Args:
        out: the open text file.
        then: also hand every message to this store (`replay --publish`: the outbox),
            whose answer is the answer; without it every written line counts as accepted.
    """

    def __init__(self, out: TextIO, *, then: MessageStore | None = None) -> None:
        self._out = out
        self._then = then

    def store(self, message: OutgoingAlert) -> bool:
        self._out.write(message.payload.decode("utf-8") + "\n")
        self._out.flush()
        return self._then.store(message) if self._then is not None else True


def withhold(holds: HoldStore | None, audit: AuditLog | None, alert: Alert, withheld: Withheld) -> None:
    """Keep a copy an agreement kept back, audit it (`withheld`) and log it: the one way a copy is withheld."""
    if holds is not None:
        holds.keep_withheld(alert, withheld)
    if audit is not None:
        audit.record_event("withheld", **withheld_record(alert, withheld))
    log_event(
        _log,
        "alert_withheld",
        logging.WARNING,
        recipient=withheld.recipient,
        alert_id=alert.identifier,
        reason=withheld.reason,
        detail=withheld.detail,
    )
