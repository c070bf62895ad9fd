"""A drill with no agent running: the command builds the site's delivery side itself, for the drill alone.

It opens what the agent would: the site's outbox, its holds and feedback
tables, the audit log, a feedback intake (`agent.runtime.feedback_assembly`)
and a publisher subscribed to the site's feedback topic, under its own MQTT
client id (`<client id>-drill`), so an agent started meanwhile does not take
its session over nor lose its own. After the drill it waits up to `wait_s`
for the recipients' statuses, which the intake checks and audits as the
agent would. Messages still in the outbox at the end stay there for the
agent's next start, which also knows them (its feedback table is the same,
and it reads the audit log), so statuses that come later are believed then.
"""

from __future__ import annotations

__all__ = ["AgentRunning", "agent_running", "run_standalone"]

import time
from collections.abc import Callable
from contextlib import ExitStack

from agent.config import SiteConfig
from agent.config.drills import DrillScenario
from agent.delivery.feedback_stats import FeedbackCounters
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.release_gate import ReleaseGate
from agent.delivery.routing import AlertDispatcher
from agent.delivery.sharing_terms import TermsTables
from agent.delivery.sink import OutboxStore
from agent.drills.drill_run import DrillDelivery, DrillOutcome, run_drill
from agent.errors import AgentError
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.feedback_assembly import feedback_intake
from agent.runtime.health import judge_state, read_state


class AgentRunning(AgentError):
    """The site's agent is running: a standalone drill would share its outbox with it."""


def agent_running(config: SiteConfig) -> str | None:
    """Why the state file says the site's agent is running (its pid), or None when it is not."""
    state = read_state(config.runtime.state_dir)
    if state is None or not judge_state(state).running:
        return None
    return f"the agent of site {config.site.id} is running (pid {state.pid}, state file in {config.runtime.state_dir})"


def run_standalone(
    config: SiteConfig,
    scenario: DrillScenario,
    drill_id: str,
    *,
    wait_s: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[DrillOutcome, FeedbackCounters]:
    """Run the drill on a delivery side of its own, then wait `wait_s` for statuses (see the module docstring).

    Raises:
        AgentRunning: the site's agent runs (hand the drill to it instead).
        BrokerUnavailable: the broker could not be reached (nothing was sent).
    """
    running = agent_running(config)
    if running is not None:
        raise AgentRunning(f"{running}: run the drill without --standalone, the agent will send it")
    mqtt = config.mqtt.model_copy(
        update={"client_id": f"{config.mqtt.client_id or 'edge-agent-' + config.site.id}-drill"}
    )
    with ExitStack() as stack:
        outbox = stack.enter_context(Outbox(config.outbox))
        audit = AuditLog(config.policies.audit_log)
        holds = stack.enter_context(ReleaseGate(config.outbox.path))
        tables = TermsTables(verdicts=holds)
        live: AlertDispatcher = dispatcher_from_config(config).with_tables(tables)
        store = OutboxStore(outbox, default_expiry_s=config.mqtt.message_expiry_s)
        feedback = stack.enter_context(
            feedback_intake(config, audit=audit, store=store, holds=holds, dispatcher=lambda: live)
        )
        publisher = stack.enter_context(
            MqttPublisher(
                mqtt,
                config.site.id,
                outbox,
                subscriptions=[feedback.subscription()],
                on_delivered=feedback.on_delivered,
            )
        )
        publisher.wait_connected(config.mqtt.connect_timeout_s)
        _wait_subscribed(feedback.counters, config.mqtt.connect_timeout_s)
        delivery = DrillDelivery(store, audit, tables, holds, feedback.watch)
        outcome = run_drill(config, scenario, drill_id, delivery, should_stop=should_stop)
        deadline = time.monotonic() + wait_s
        publisher.flush(max(0.0, wait_s))
        while time.monotonic() < deadline and not should_stop():
            time.sleep(0.2)
        feedback.wait_idle(5.0)
        return outcome, feedback.counters()


def _wait_subscribed(counters: Callable[[], FeedbackCounters], timeout_s: float) -> None:
    # A recipient may answer within milliseconds of the first alert: the feedback
    # subscription must be granted before anything is sent, or its statuses are lost.
    deadline = time.monotonic() + timeout_s
    while not counters().subscribed:
        if time.monotonic() > deadline:
            problem = counters().subscription_problem or "no answer from the broker"
            raise AgentError(f"the broker did not grant the feedback subscription: {problem}")
        time.sleep(0.05)
