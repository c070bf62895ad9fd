"""Builds the feedback side from the site config: the intake, its tables, and escalation's router.

An escalated alert is rendered as the next recipient's own view by a
dispatcher made from the site config with that one recipient in it, its
`rules` widened to all and its `min_severity` to Minor (the escalating
recipient's `escalate_min_severity` has already decided), so its fields,
location, pseudonyms, agreement and expiry are its own and the signing key
is the site's. One dispatcher is built per target policy and kept.
"""

from __future__ import annotations

__all__ = ["escalation_router", "feedback_intake"]

import threading
from collections.abc import Callable

from agent.alerts.schema import Alert
from agent.config import RecipientPolicy, SiteConfig
from agent.delivery.escalation import Escalator, RouteTo
from agent.delivery.feedback import FeedbackIntake
from agent.delivery.feedback_ledger import FeedbackLedger
from agent.delivery.feedback_stats import FeedbackMeter
from agent.delivery.release_gate import ReleaseGate
from agent.delivery.releaser import Releaser
from agent.delivery.routing import AlertDispatcher, Routed
from agent.delivery.sink import MessageStore
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import dispatcher_from_config


def escalation_router(config: SiteConfig) -> RouteTo:
    """Renders one recipient's view of an alert whatever its rules and minimum severity (see the module docstring)."""
    built: dict[str, AlertDispatcher] = {}
    lock = threading.Lock()

    def route_to(alert: Alert, target: RecipientPolicy) -> Routed:
        key = target.model_dump_json()
        with lock:
            dispatcher = built.get(key)
            if dispatcher is None:
                widened = target.model_copy(update={"rules": ["*"], "min_severity": "Minor"})
                policies = config.policies.model_copy(update={"recipients": [widened]})
                dispatcher = dispatcher_from_config(config.model_copy(update={"policies": policies}))
                built[key] = dispatcher
        return dispatcher.dispatch(alert)

    return route_to


def feedback_intake(
    config: SiteConfig,
    *,
    audit: AuditLog,
    store: MessageStore,
    holds: ReleaseGate | None = None,
    dispatcher: Callable[[], AlertDispatcher] | None = None,
) -> FeedbackIntake:
    """The site's feedback intake; its tables are in the outbox file (enter it after the outbox).

    With `holds` and `dispatcher` (the one in use, which a reload swaps), verifiers' verdicts
    release the copies agreements hold.
    """
    ledger = FeedbackLedger(config.outbox.path)
    route_to = escalation_router(config)
    releaser = None
    if holds is not None and dispatcher is not None:
        releaser = Releaser(config.policies, holds, dispatcher, store, audit)

    def escalator(meter: FeedbackMeter) -> Escalator:
        return Escalator(config.policies, ledger, route_to, store, audit, meter)

    return FeedbackIntake(
        site_id=config.site.id,
        prefix=config.mqtt.topic_prefix,
        policies=config.policies,
        ledger=ledger,
        audit=audit,
        escalator=escalator,
        releaser=releaser,
    )
