"""The agent's monitor: what the running site looks like, once a second.

Each `tick` samples every camera's meter, the delivery sink, the outbox, the
broker connection and the process into one `SiteStats`, lets the
`RateScheduler` share the box fairly from the same samples, and judges the
agent's health. On their own intervals it rewrites the state file (read by
`edge-agent status`) and publishes the stats (`<prefix>/<site>/stats`, QoS 0,
not retained); while the agent is healthy it pings the systemd watchdog.
Everything that reports (stats topic, state file, Prometheus) reads the one
snapshot in `latest`, so they always agree.
"""

from __future__ import annotations

__all__ = ["SiteMonitor"]

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import psutil

from agent.config import SiteConfig
from agent.config.agreements import agreement_warnings
from agent.delivery.break_glass_stats import BreakGlassCounters
from agent.delivery.feedback_stats import FeedbackCounters
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.sink import DeliverySink
from agent.delivery.topics import stats_topic
from agent.logs import log_event
from agent.runtime.camera_worker import CameraWorker
from agent.runtime.health import AgentState, HealthReport, assess_health, write_state
from agent.runtime.scheduler import RateScheduler, RateSignal
from agent.runtime.sd_notify import SystemdNotifier
from agent.runtime.stats import ProcessSampler, SiteStats

_log = logging.getLogger("agent.runtime.monitor")


class SiteMonitor:
    """Samples, reports and watches one running site (see the module docstring).

    Args:
        config: the site config (site id, topic prefix and `runtime` intervals; none of them reloads).
        workers: the camera workers.
        scheduler: shares the detect rate between the cameras.
        sink: the delivery sink, for its counters.
        outbox: the durable outbox, for its depth and drops.
        publisher: the broker connection, for its state and to publish the stats.
        notifier: systemd notifications (the watchdog ping).
        started_mono_s: when the agent started (`time.monotonic()`), for its uptime.
        feedback: the statuses recipients sent back (`FeedbackIntake.counters`), when there is an intake.
        break_glass: the break-glass desk's counters, when there is a desk.
    """

    def __init__(
        self,
        config: SiteConfig,
        *,
        workers: Sequence[CameraWorker],
        scheduler: RateScheduler,
        sink: DeliverySink,
        outbox: Outbox,
        publisher: MqttPublisher,
        notifier: SystemdNotifier,
        started_mono_s: float,
        feedback: Callable[[], FeedbackCounters] | None = None,
        break_glass: Callable[[], BreakGlassCounters] | None = None,
    ) -> None:
        self._site_id = config.site.id
        self._runtime = config.runtime
        self._stats_topic = stats_topic(config.mqtt.topic_prefix, config.site.id)
        self._workers = tuple(workers)
        self._scheduler = scheduler
        self._sink = sink
        self._outbox = outbox
        self._publisher = publisher
        self._notifier = notifier
        self._process = ProcessSampler()
        self._pid = psutil.Process().pid
        self._started_mono = started_mono_s
        self._feedback = feedback
        self._break_glass = break_glass
        self._policies = config.policies
        self._next_state_s = self._next_stats_s = time.monotonic()
        self._health = HealthReport(True, (), ())
        self._state_write_failures = 0
        self.latest: SiteStats | None = None
        self.status = "running"

    def tick(self) -> None:
        """Sample now; write the state file and publish the stats when theirs is due; ping the watchdog."""
        self.sample()
        now = time.monotonic()
        if now >= self._next_state_s:
            self.write_state()
            self._next_state_s = now + self._runtime.state_interval_s
        if self._runtime.stats_interval_s > 0 and now >= self._next_stats_s:
            self._publish_stats()
            self._next_stats_s = now + self._runtime.stats_interval_s
        if self._health.healthy:
            self._notifier.watchdog()

    def sample(self) -> SiteStats:
        cameras = tuple(w.meter.sample() for w in self._workers)
        process = self._process.sample()
        signals = [RateSignal(*w.meter.window_on_time()) for w in self._workers]
        scale = self._scheduler.update(signals, process.cpu_fraction)
        box = self._outbox.stats()
        latest = SiteStats(
            site_id=self._site_id,
            ts_unix_s=round(time.time(), 3),
            uptime_s=round(time.monotonic() - self._started_mono, 3),
            rate_scale=round(scale, 4),
            cameras=cameras,
            outbox_depth=box.depth,
            outbox_bytes=box.bytes,
            outbox_dropped=box.dropped,
            outbox_delivered=box.delivered,
            broker_state=self._publisher.state.value,
            process=process,
            delivery=self._sink.counters(),
            publisher=self._publisher.counters(),
            outbox_expired=box.expired,
            outbox_rejected=box.rejected,
            state_write_failures=self._state_write_failures,
            outbox_storage_errors=box.storage_errors,
            outbox_unstored=box.unstored,
            outbox_storage_problem=box.storage_problem,
            broker_warning=self._publisher.broker_warning,
            feedback=self._feedback() if self._feedback is not None else FeedbackCounters(),
            agreement_warnings=tuple(
                agreement_warnings(
                    self._policies.agreements,
                    {r.name: r.agreement_id for r in self._policies.recipients},
                    datetime.now(UTC),
                )
            ),
            break_glass=self._break_glass() if self._break_glass is not None else BreakGlassCounters(),
        )
        self._health = assess_health(
            latest, publisher_alive=self._publisher.threads_alive, stall_timeout_s=self._runtime.stall_timeout_s
        )
        self.latest = latest
        return latest

    def write_state(self) -> None:
        """Rewrite the state file with the status, health and latest stats (a failure is logged, not raised)."""
        state = AgentState(
            pid=self._pid,
            status=self.status,
            updated_unix_s=time.time(),
            interval_s=self._runtime.state_interval_s,
            health=self._health,
            stats=self.latest.to_dict() if self.latest is not None else None,
        )
        try:
            write_state(self._runtime.state_dir, state)
        except OSError as err:
            self._state_write_failures += 1
            log_event(_log, "state_write_failed", logging.WARNING, dir=self._runtime.state_dir, error=str(err))

    def _publish_stats(self) -> None:
        if self.latest is not None:
            self._publisher.publish_transient(self._stats_topic, self.latest.to_json())
