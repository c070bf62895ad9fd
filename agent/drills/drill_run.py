"""One drill: a scenario's clip through its camera's pipeline, the alerts sent as CAP `Exercise`.

`run_drill` plays the clip at its own pace (a frame is processed when the
clip's clock reaches it, so the recipients see the timeline a real event
would have, and a drill inside the running agent takes no more CPU than one
more camera) through the camera's zones and rules, with a fresh detector and
tracker, alerts built with `status: Exercise` and their times taken from the
wall clock. The alerts go through the delivery path the caller gives
(`DrillDelivery`: the live agent's outbox, audit log, holds and feedback
intake, or the standalone command's own) on a delivery sink of the drill's
own whose dispatcher is the site's, limited to the drill's recipients and
marking each message with the drill id (`agent.drills.drill_marking`).

The audit log brackets the drill: `drill_started` (drill id, scenario,
recipients, camera) before the first alert, `drill_finished` (the same,
with `alerts`, `messages` and `state`: finished, failed or interrupted, and
`detail` when it did not finish) after the last message was stored. At the
end, and when stopped early, the pipeline ends its open incidents, so no
drill incident stays open at a recipient.
"""

from __future__ import annotations

__all__ = ["DrillDelivery", "DrillOutcome", "drill_recipients", "new_drill_id", "run_drill"]

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from agent.alerts.schema import Alert
from agent.config import SiteConfig
from agent.config.drills import DrillScenario
from agent.delivery.message_stores import HoldStore, MessageStore
from agent.delivery.sharing_terms import TermsTables
from agent.delivery.sink import DeliverySink
from agent.drills.drill_marking import DrillDispatcher
from agent.errors import AgentError
from agent.logs import log_event
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import camera_pipeline, detector_from_config, dispatcher_from_config, tracker_from_config
from agent.sources.file_replay import FileReplay
from agent.values.alert_moment import AlertMoment

_log = logging.getLogger("agent.drills")
_SLEEP_SLICE_S = 0.2
Submit = Callable[[tuple[Alert, ...], AlertMoment | None], None]
DrillState = Literal["finished", "failed", "interrupted"]


@dataclass(frozen=True, slots=True)
class DrillDelivery:
    """The delivery path a drill's alerts join.

    Attributes:
        store: where messages go (the outbox).
        audit: the site's audit log (in the live agent, the instance its feedback intake observes).
        tables: verifiers' verdicts and grants, as the live dispatcher consults them.
        holds: where copies an agreement holds are kept (None: only audited).
        watch: wraps the sink's submit (`FeedbackIntake.watch`: it keeps each alert for its
            audit record's incident and for escalation).
    """

    store: MessageStore
    audit: AuditLog
    tables: TermsTables
    holds: HoldStore | None
    watch: Callable[[Submit], Submit]


@dataclass(frozen=True, slots=True)
class DrillOutcome:
    """What a drill did (the `drill_finished` record, and the command's summary)."""

    drill_id: str
    scenario: str
    camera: str
    recipients: tuple[str, ...]
    state: DrillState
    alerts: int
    messages: int
    detail: str = ""


def new_drill_id(scenario: str, now: datetime | None = None) -> str:
    """`<scenario>-<UTC time to the second>-<4 hex digits>`: readable, sortable by time, unique."""
    return f"{scenario}-{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def drill_recipients(config: SiteConfig, scenario: DrillScenario) -> tuple[str, ...]:
    """The recipients taking part, in policy order."""
    wanted = scenario.recipients
    return tuple(r.name for r in config.policies.recipients if wanted is None or r.name in wanted)


def run_drill(
    config: SiteConfig,
    scenario: DrillScenario,
    drill_id: str,
    delivery: DrillDelivery,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> DrillOutcome:
    """Run one drill (see the module docstring); failures end up in the outcome, never raised."""
    recipients = drill_recipients(config, scenario)
    bracket: dict[str, Any] = {
        "drill_id": drill_id,
        "scenario": scenario.name,
        "recipients": list(recipients),
        "camera": scenario.camera,
    }
    delivery.audit.record_event("drill_started", **bracket)
    log_event(_log, "drill_started", drill=drill_id, scenario=scenario.name, camera=scenario.camera)
    state: DrillState = "finished"
    detail = ""
    alerts = messages = 0
    try:
        sink = _drill_sink(config, recipients, drill_id, delivery)
        with sink:
            stopped = _play(config, scenario, delivery.watch(sink.submit), should_stop)
        counts = sink.counters()
        alerts, messages = counts.alerts_submitted, counts.messages_delivered
        if stopped:
            state, detail = "interrupted", "stopped before the end of the clip"
        elif counts.failures:
            state, detail = "failed", f"{counts.failures} messages could not be made or stored (see the log)"
    except Exception as err:  # noqa: BLE001 - a drill that cannot run says why; the agent goes on
        state, detail = "failed", f"{type(err).__name__}: {err}" if not isinstance(err, AgentError) else str(err)
    outcome = DrillOutcome(drill_id, scenario.name, scenario.camera, recipients, state, alerts, messages, detail)
    finished: dict[str, Any] = {**bracket, "alerts": alerts, "messages": messages, "state": state}
    if detail:
        finished["detail"] = detail
    delivery.audit.record_event("drill_finished", **finished)
    level = logging.INFO if state == "finished" else logging.WARNING
    log_event(_log, "drill_finished", level, drill=drill_id, state=state, alerts=alerts, messages=messages,
              detail=detail)  # fmt: skip
    return outcome


def _drill_sink(
    config: SiteConfig, recipients: tuple[str, ...], drill_id: str, delivery: DrillDelivery
) -> DeliverySink:
    only = [r for r in config.policies.recipients if r.name in recipients]
    policies = config.policies.model_copy(update={"recipients": only})
    base = dispatcher_from_config(config.model_copy(update={"policies": policies})).with_tables(delivery.tables)
    # Waits rather than shed a snapshot: a drill's pictures are part of what it rehearses.
    return DeliverySink(
        DrillDispatcher(base, drill_id),
        delivery.store,
        audit=delivery.audit,
        holds=delivery.holds,
        when_full="wait",
        thread_name="drill.delivery",
    )


def _play(config: SiteConfig, scenario: DrillScenario, submit: Submit, should_stop: Callable[[], bool]) -> bool:
    """Feed the clip to the camera's pipeline at the clip's pace; True when stopped before its end."""
    camera = next(c for c in config.cameras if c.id == scenario.camera)
    detector = detector_from_config(config.detector, tracker=config.tracker)
    try:
        pipeline = camera_pipeline(
            camera,
            config.site,
            detector,
            tracker_from_config(config.tracker, detector=config.detector),
            status="Exercise",
        )
        started_utc, started_mono = datetime.now(UTC), time.monotonic()
        clip = FileReplay(camera.id, scenario.clip, detect_fps=camera.detect_fps, start_utc=started_utc)
        stopped = False
        for frame in clip:
            if not _wait_until(started_mono + frame.ts_monotonic_s, should_stop):
                stopped = True
                break
            result = pipeline.process(frame)
            submit(result.alerts, result.moment)
        submit(pipeline.finish(), None)
        return stopped
    finally:
        detector.close()


def _wait_until(deadline_mono: float, should_stop: Callable[[], bool]) -> bool:
    """Sleep until the monotonic deadline; False when told to stop first."""
    while True:
        if should_stop():
            return False
        left = deadline_mono - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, _SLEEP_SLICE_S))
