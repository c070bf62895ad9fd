"""A dispatcher that marks every message it makes as part of one drill.

The sink audits each message the store accepted with the message's sharing
terms (`OutgoingAlert.terms`), so a `drill` entry there lands in the
sent-message record (`drill: <drill id>`) with no other part of the delivery
path knowing about drills. Routing itself, the agreements, signing and
topics are the wrapped dispatcher's, unchanged: a drill's messages are made
exactly as live ones are, with CAP `status: Exercise` from the alert.
"""

from __future__ import annotations

__all__ = ["DrillDispatcher"]

from dataclasses import replace

from agent.alerts.schema import Alert
from agent.delivery.routing import AlertDispatcher, OutgoingAlert, Routed
from agent.delivery.sharing_terms import HeldCopy, Release, TermsTables, Withheld
from agent.privacy.policy import SharingPolicy
from agent.values.alert_moment import AlertMoment


class DrillDispatcher(AlertDispatcher):
    """`base`'s routing, each message's terms carrying `drill: drill_id`.

    It delegates every public method to `base` rather than build a dispatcher of its own, so
    the policies, signing key and pseudonyms are exactly those `base` was built with.
    """

    def __init__(self, base: AlertDispatcher, drill_id: str) -> None:
        # No super().__init__: every method the sink and the releaser call is delegated below.
        self._base = base
        self._drill_id = drill_id
        self.tables = base.tables

    @property
    def drill_id(self) -> str:
        return self._drill_id

    @property
    def sharing(self) -> SharingPolicy | None:
        return self._base.sharing

    @property
    def snapshots_wanted(self) -> bool:
        return self._base.snapshots_wanted

    def with_tables(self, tables: TermsTables) -> AlertDispatcher:
        return DrillDispatcher(self._base.with_tables(tables), self._drill_id)

    def route(self, alert: Alert, moment: AlertMoment | None = None) -> list[OutgoingAlert]:
        return list(self.dispatch(alert, moment).messages)

    def dispatch(self, alert: Alert, moment: AlertMoment | None = None) -> Routed:
        routed = self._base.dispatch(alert, moment)
        return replace(routed, messages=tuple(self._marked(m) for m in routed.messages))

    def release(self, copy: HeldCopy, level: int, how: Release) -> OutgoingAlert | Withheld | None:
        released = self._base.release(copy, level, how)
        return self._marked(released) if isinstance(released, OutgoingAlert) else released

    def _marked(self, message: OutgoingAlert) -> OutgoingAlert:
        return replace(message, terms={**message.terms, "drill": self._drill_id})
