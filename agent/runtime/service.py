"""The live agent: every enabled camera of a site in one process, alerts to the broker.

Each camera runs on its own `CameraWorker` thread with a detector from the
`DetectorPool` (one shared session by default); a camera that fails is
restarted with backoff while the others keep running. Alerts go to the
durable outbox, which the publisher drains. The main thread is the monitor:
once a second it samples every camera into one `SiteStats`, lets the
`RateScheduler` share the box fairly, and on their own intervals rewrites
the state file (`edge-agent status`), pings the systemd watchdog while the
agent is healthy, and publishes the stats (`<prefix>/<site>/stats`, QoS 0,
not retained). Prometheus metrics are served from the same snapshot when
enabled.

Signals: SIGTERM or SIGINT stops the cameras, ends their open incidents,
flushes the outbox for up to `FLUSH_ON_STOP_S` and publishes the retained
`stopped` status. SIGHUP reloads zones, masks, motion, filters, rules,
detect rates and policies from the config file without stopping the
cameras; a file that does not validate, or that changes anything only a
restart can apply (cameras, sources, detector, broker, outbox, signing,
runtime), is refused with a logged reason and the running config stays.
"""

from __future__ import annotations

__all__ = ["FLUSH_ON_STOP_S", "AgentService", "reload_refusal"]

import logging
import signal
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

import psutil

from agent.alerts.schema import Alert
from agent.config import SiteConfig, load_config
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import BrokerUnavailable, MqttPublisher
from agent.delivery.routing import AlertDispatcher
from agent.delivery.topics import stats_topic
from agent.errors import AgentError, ConfigError
from agent.logs import log_event
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.camera_worker import CameraWorker
from agent.runtime.detector_pool import DetectorPool
from agent.runtime.health import AgentState, HealthReport, assess_health, write_state
from agent.runtime.metrics import MetricsServer
from agent.runtime.numba_cache import effective_cache_dir
from agent.runtime.scheduler import RateScheduler, RateSignal
from agent.runtime.sd_notify import SystemdNotifier
from agent.runtime.stats import ProcessSampler, SiteStats
from agent.values.alert_moment import AlertMoment

_log = logging.getLogger("agent.runtime.service")
FLUSH_ON_STOP_S = 10.0
_MONITOR_PERIOD_S = 1.0
# What SIGHUP may change inside a camera; anything else there needs a restart.
_CAMERA_RESTART_FIELDS = {"id", "source", "loop", "enabled"}


def reload_refusal(old: SiteConfig, new: SiteConfig) -> str | None:
    """Why `new` cannot be applied to a running agent (None when it can)."""
    for section in ("site", "detector", "tracker", "mqtt", "outbox", "signing", "runtime"):
        if getattr(old, section) != getattr(new, section):
            return f"section {section!r} changed; restart the agent to apply it"
    if old.policies.audit_log != new.policies.audit_log:
        return "policies.audit_log changed; restart the agent to apply it"
    old_ids = [c.id for c in old.cameras]
    if old_ids != [c.id for c in new.cameras]:
        return f"cameras changed ({', '.join(old_ids)} -> {', '.join(c.id for c in new.cameras)}); restart to apply"
    for before, after in zip(old.cameras, new.cameras, strict=False):
        if before.model_dump(include=_CAMERA_RESTART_FIELDS) != after.model_dump(include=_CAMERA_RESTART_FIELDS):
            return f"camera {before.id!r}: source, loop or enabled changed; restart to apply"
    return None


class AgentService:
    """Runs a site until stopped (or until every non-looping file source has ended).

    Args:
        config: the validated site config.
        config_path: the file it came from (SIGHUP reads it again); None disables reload.
        overrides: the `--set` overrides applied on every (re)load.
    """

    def __init__(
        self, config: SiteConfig, *, config_path: str | Path | None = None, overrides: Sequence[str] = ()
    ) -> None:
        self._config = config
        self._config_path = config_path
        self._overrides = list(overrides)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._dispatcher: AlertDispatcher = dispatcher_from_config(config)
        self._audit = AuditLog(config.policies.audit_log)
        self._audit = AuditLog(config.policies.audit_log)
        self._outbox: Outbox | None = None
        self._publisher: MqttPublisher | None = None
        self._workers: list[CameraWorker] = []
        self._scheduler = RateScheduler(config.runtime.max_cpu_fraction)
        self._process = ProcessSampler()
        self._notifier = SystemdNotifier()
        self._latest: SiteStats | None = None
        self._health = HealthReport(True, (), ())
        self._status = "starting"
        self._started_mono = time.monotonic()
        self._process_started_unix = psutil.Process().create_time()

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    @property
    def latest_stats(self) -> SiteStats | None:
        return self._latest

    def install_signal_handlers(self) -> None:
        def handle_stop(signum: int, _frame: FrameType | None) -> None:
            log_event(_log, "stop_requested", signal=signal.Signals(signum).name)
            self.stop()

        def handle_reload(_signum: int, _frame: FrameType | None) -> None:
            log_event(_log, "reload_requested", signal="SIGHUP")
            self.request_reload()

        signal.signal(signal.SIGTERM, handle_stop)
        signal.signal(signal.SIGINT, handle_stop)
        signal.signal(signal.SIGHUP, handle_reload)

    # -- run -------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        config = self._config
        cameras = [c for c in config.cameras if c.enabled]
        with ExitStack() as stack:
            pool = DetectorPool(config.detector, [c.id for c in cameras], config.runtime.detector_sharing)
            stack.callback(pool.close)
            self._outbox = stack.enter_context(Outbox(config.outbox))
            self._publisher = stack.enter_context(MqttPublisher(config.mqtt, config.site.id, self._outbox))
            if config.runtime.metrics.enabled:
                stack.enter_context(MetricsServer(config.runtime.metrics, lambda: self._latest))
            self._wait_for_broker(self._publisher)
            self._workers = [
                CameraWorker(
                    cam,
                    config,
                    pool.handle(cam.id),
                    self._publish,
                    self._scheduler,
                    self._stop,
                    on_first_frame=self._first_frame,
                )
                for cam in cameras
            ]
            for worker in self._workers:
                worker.start()
            self._status = "running"
            log_event(
                _log,
                "agent_started",
                site=config.site.id,
                cameras=len(cameras),
                detector_sharing=config.runtime.detector_sharing,
                numba_cache=effective_cache_dir(),
            )
            self._notifier.ready(f"{len(cameras)} cameras")
            self._monitor()
            self._shutdown(self._publisher, self._outbox)
        return 0

    def _shutdown(self, publisher: MqttPublisher, outbox: Outbox) -> None:
        self._status = "stopping"
        self._notifier.stopping()
        for worker in self._workers:
            worker.join(FLUSH_ON_STOP_S)
        flushed = publisher.flush(FLUSH_ON_STOP_S)
        self._status = "stopped"
        self._write_state()
        log_event(_log, "agent_stopped", flushed=flushed, outbox_depth=outbox.stats().depth)

    def _wait_for_broker(self, publisher: MqttPublisher) -> None:
        # A refused connection (credentials, ACL) is a config error: stop here.
        # An unreachable broker is not: alerts wait in the outbox until it is back.
        try:
            publisher.wait_connected(self._config.mqtt.connect_timeout_s)
        except BrokerUnavailable as err:
            log_event(_log, "broker_unreachable", logging.WARNING, detail=str(err), action="buffering in outbox")

    def _first_frame(self, camera_id: str) -> None:
        log_event(
            _log,
            "first_frame",
            camera=camera_id,
            since_process_start_s=f"{time.time() - self._process_started_unix:.2f}",
        )

    # -- monitor ---------------------------------------------------------------------------

    def _monitor(self) -> None:
        runtime = self._config.runtime
        next_state = next_stats = time.monotonic()
        while any(w.is_alive() for w in self._workers) and not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload()
            self._sample()
            now = time.monotonic()
            if now >= next_state:
                self._write_state()
                next_state = now + runtime.state_interval_s
            if runtime.stats_interval_s > 0 and now >= next_stats:
                self._publish_stats()
                next_stats = now + runtime.stats_interval_s
            if self._health.healthy:
                self._notifier.watchdog()
            self._stop.wait(_MONITOR_PERIOD_S)

    def _sample(self) -> None:
        if self._outbox is None or self._publisher is None:
            return
        cameras = tuple(w.meter.sample() for w in self._workers)
        process = self._process.sample()
        signals = [RateSignal(*w.meter.window_on_time()) for w in self._workers]
        scale = self._scheduler.update(signals, process.cpu_fraction)
        box = self._outbox.stats()
        self._latest = SiteStats(
            site_id=self._config.site.id,
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
        )
        self._health = assess_health(
            self._latest,
            publisher_alive=self._publisher.threads_alive,
            stall_timeout_s=self._config.runtime.stall_timeout_s,
        )

    def _write_state(self) -> None:
        runtime = self._config.runtime
        state = AgentState(
            pid=psutil.Process().pid,
            status=self._status,
            updated_unix_s=time.time(),
            interval_s=runtime.state_interval_s,
            health=self._health,
            stats=self._latest.to_dict() if self._latest is not None else None,
        )
        try:
            write_state(runtime.state_dir, state)
        except OSError as err:
            log_event(_log, "state_write_failed", logging.WARNING, dir=runtime.state_dir, error=str(err))

    def _publish_stats(self) -> None:
        if self._latest is None or self._publisher is None:
            return
        topic = stats_topic(self._config.mqtt.topic_prefix, self._config.site.id)
        self._publisher.publish_transient(topic, self._latest.to_json())

    # -- reload ----------------------------------------------------------------------------

    def _apply_reload(self) -> bool:
        """Apply the config file again; keep the running config (and say why) when it cannot."""
        if self._config_path is None:
            log_event(_log, "reload_rejected", logging.WARNING, reason="no config file to reload")
            return False
        self._notifier.reloading()
        try:
            new = load_config(self._config_path, self._overrides)
            refusal = reload_refusal(self._config, new)
            if refusal is not None:
                raise AgentError(refusal)
            dispatcher = dispatcher_from_config(new)
        except ConfigError as err:
            log_event(
                _log,
                "reload_rejected",
                logging.ERROR,
                file=self._config_path,
                reason="; ".join(str(i) for i in err.issues),
                action="keeping the running config",
            )
            self._notifier.ready()
            return False
        except AgentError as err:
            log_event(
                _log,
                "reload_rejected",
                logging.ERROR,
                file=self._config_path,
                reason=str(err),
                action="keeping the running config",
            )
            self._notifier.ready()
            return False
        self._dispatcher = dispatcher
        by_id = {c.id: c for c in new.cameras}
        for worker in self._workers:
            worker.request_reload(by_id[worker.camera_id])
        self._config = new
        log_event(
            _log,
            "reload_applied",
            file=self._config_path,
            cameras=len(self._workers),
            recipients=len(new.policies.recipients),
        )
        self._notifier.ready()
        return True

    # -- alerts ----------------------------------------------------------------------------

    def _publish(self, alerts: tuple[Alert, ...], moment: AlertMoment | None = None) -> None:
        if self._outbox is None:
            return
        expiry_s = self._config.mqtt.message_expiry_s
        dispatcher = self._dispatcher  # one reference: a reload swaps it whole
        for alert in alerts:
            for message in dispatcher.route(alert, moment):
                if self._outbox.put(message.to_outbound(expiry_s)):
                    self._audit.record(message)  # accepted: it will leave the box
                log_event(
                    _log,
                    "alert_queued",
                    camera=alert.detection.camera_id,
                    rule=alert.detection.rule,
                    phase=alert.detection.phase,
                    recipient=message.recipient,
                    alert_id=alert.identifier,
                )
