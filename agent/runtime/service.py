"""The live agent: every enabled camera of a site in one process, alerts to the broker.

`AgentService` owns the process's lifecycle and signals and composes the
parts that do the work. Each camera runs on its own `CameraWorker` thread
with a detector from the `DetectorPool` (one shared session by default); a
camera that fails is restarted with backoff while the others keep running.
The cameras hand their alerts to the `DeliverySink`, whose one thread routes
them per recipient, signs them, puts them in the durable outbox (which the
publisher drains) and audits them, so no camera waits on any of that. The
main thread runs the `SiteMonitor` once a second (stats, state file, stats
topic, watchdog, Prometheus from the same snapshot when enabled) and, on
SIGHUP, the `ConfigReloader`.

The same broker connection brings back the signed statuses recipients send
about the site's alerts; the `FeedbackIntake` (`agent.delivery.feedback`,
built by `agent.runtime.feedback_assembly`) checks, audits and counts them on
its own thread and escalates an incident nobody acknowledged in time.

At start, before any camera runs, the incidents a killed run left open (kept
beside the outbox by the sink, `agent.delivery.open_incidents`) get their
`end`, saying that the agent stopped while they were open.

Signals: SIGTERM or SIGINT stops the cameras, ends their open incidents,
delivers what the sink still holds, flushes the outbox for up to
`FLUSH_ON_STOP_S` and publishes the retained `stopped` status. SIGHUP
reloads zones, masks, motion, filters, rules, detect rates and policies
from the config file without stopping the cameras; a file that does not
validate, or that changes anything only a restart can apply, is refused with
a logged reason and the running config stays (see `agent.runtime.reloader`).
"""

from __future__ import annotations

__all__ = ["FLUSH_ON_STOP_S", "AgentService"]

import logging
import signal
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

import psutil

from agent.config import SiteConfig
from agent.delivery.break_glass import BreakGlassDesk
from agent.delivery.break_glass_table import BreakGlassTable
from agent.delivery.feedback import FeedbackIntake
from agent.delivery.open_incidents import OpenIncidents, end_incidents_left_open
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import BrokerUnavailable, MqttPublisher
from agent.delivery.reconcile import report_lost_messages
from agent.delivery.release_gate import ReleaseGate
from agent.delivery.routing import AlertDispatcher
from agent.delivery.sharing_terms import TermsTables
from agent.delivery.sink import DeliverySink, OutboxStore
from agent.drills.drill_desk import DrillDesk
from agent.drills.drill_run import DrillDelivery
from agent.kernels import kernel_status
from agent.logs import log_event
from agent.privacy.audit import AuditLog
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.camera_worker import CameraWorker
from agent.runtime.detector_pool import DetectorPool
from agent.runtime.feedback_assembly import feedback_intake
from agent.runtime.heap import map_large_blocks
from agent.runtime.metrics import MetricsServer
from agent.runtime.monitor import SiteMonitor
from agent.runtime.numba_cache import effective_cache_dir
from agent.runtime.reloader import ConfigReloader
from agent.runtime.scheduler import RateScheduler
from agent.runtime.sd_notify import SystemdNotifier
from agent.runtime.stats import SiteStats

_log = logging.getLogger("agent.runtime.service")
FLUSH_ON_STOP_S = 10.0
_MONITOR_PERIOD_S = 1.0


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
        # Built now, not on the first alert: the signing key and any personal-data warning show at start.
        self._dispatcher = dispatcher_from_config(config)
        self._audit = AuditLog(config.policies.audit_log)
        self._workers: list[CameraWorker] = []
        self._scheduler = RateScheduler(config.runtime.max_cpu_fraction)
        self._notifier = SystemdNotifier()
        self._monitor: SiteMonitor | None = None
        self._sink: DeliverySink | None = None
        self._started_mono = time.monotonic()
        self._process_started_unix = psutil.Process().create_time()

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    @property
    def latest_stats(self) -> SiteStats | None:
        return self._monitor.latest if self._monitor is not None else None

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
        # Before any camera allocates frames: frame-sized buffers go back to the system when
        # freed rather than fragment the C heap (agent.runtime.heap has the measurements).
        map_large_blocks()
        config = self._config
        cameras = [c for c in config.cameras if c.enabled]
        with ExitStack() as stack:
            pool = DetectorPool(
                config.detector, [c.id for c in cameras], config.runtime.detector_sharing, tracker=config.tracker
            )
            stack.callback(pool.close)
            outbox = stack.enter_context(Outbox(config.outbox))
            report_lost_messages(outbox, config.policies.audit_log)
            incidents = stack.enter_context(OpenIncidents(config.outbox.path))
            holds = stack.enter_context(ReleaseGate(config.outbox.path))
            grants = stack.enter_context(BreakGlassTable(config.outbox.path))
            self._dispatcher = self._dispatcher.with_tables(TermsTables(verdicts=holds, grants=grants))
            store = OutboxStore(outbox, default_expiry_s=config.mqtt.message_expiry_s)
            feedback = stack.enter_context(
                feedback_intake(config, audit=self._audit, store=store, holds=holds, dispatcher=self._live_dispatcher)
            )
            # Break-glass requests: checked against the agreements, granted grants widen copies (grants table).
            desk = stack.enter_context(
                BreakGlassDesk.from_config(config, table=grants, audit=self._audit, put=outbox.put)
            )
            publisher = stack.enter_context(
                MqttPublisher(
                    config.mqtt,
                    config.site.id,
                    outbox,
                    subscriptions=[feedback.subscription(), desk.subscription()],
                    on_delivered=feedback.on_delivered,
                )
            )
            if config.runtime.metrics.enabled:
                stack.enter_context(MetricsServer(config.runtime.metrics, lambda: self.latest_stats))
            self._wait_for_broker(publisher)
            # Entered last, so it is closed (drained into the outbox) before the publisher and outbox close.
            sink = stack.enter_context(
                DeliverySink(self._dispatcher, store, audit=self._audit, incidents=incidents, holds=holds)
            )
            self._sink = sink
            submit = feedback.watch(sink.submit)  # the intake keeps each alert for its audit record and escalation
            end_incidents_left_open(incidents, submit)  # before any camera opens new ones
            self._workers = [
                CameraWorker(
                    cam,
                    config,
                    pool.handle(cam.id),
                    sink=submit,
                    scheduler=self._scheduler,
                    stop=self._stop,
                    on_first_frame=self._first_frame,
                )
                for cam in cameras
            ]
            self._monitor = SiteMonitor(
                config,
                workers=self._workers,
                scheduler=self._scheduler,
                sink=sink,
                outbox=outbox,
                publisher=publisher,
                notifier=self._notifier,
                started_mono_s=self._started_mono,
                feedback=feedback.counters,
                break_glass=desk.counters,
            )
            reloader = ConfigReloader(
                config,
                config_path=self._config_path,
                overrides=self._overrides,
                workers=self._workers,
                sink=sink,
                notifier=self._notifier,
            )
            # Drills handed over by `edge-agent drill` go out through this sink's path (agent.drills.drill_desk).
            drill_path = DrillDelivery(store, self._audit, sink.dispatcher.tables, holds, feedback.watch)
            stack.enter_context(
                DrillDesk(lambda: reloader.config, drill_path, outbox_path=config.outbox.path, stop=self._stop)
            )
            self._start_cameras(len(cameras))
            self._watch(self._monitor, reloader, feedback, desk)
            self._shutdown(self._monitor, sink, publisher, outbox)
        return 0

    def _live_dispatcher(self) -> AlertDispatcher:
        """The dispatcher alerts are routed with now (a reload swaps the sink's)."""
        return self._sink.dispatcher if self._sink is not None else self._dispatcher

    def _start_cameras(self, count: int) -> None:
        for worker in self._workers:
            worker.start()
        kernels = kernel_status()
        log_event(
            _log,
            "agent_started",
            site=self._config.site.id,
            cameras=count,
            detector_sharing=self._config.runtime.detector_sharing,
            numba_cache=effective_cache_dir(),
            kernels=kernels.mode,
        )
        if kernels.mode == "jit":
            # Said once for all kernels: the JIT works, but Numba's compiler costs ~130 MB of memory.
            log_event(_log, "kernels_not_compiled", logging.WARNING, running="numba jit", reason=kernels.detail)
        self._notifier.ready(f"{count} cameras")

    def _watch(
        self, monitor: SiteMonitor, reloader: ConfigReloader, feedback: FeedbackIntake, desk: BreakGlassDesk
    ) -> None:
        """The main thread's loop: reload when asked, tick the monitor, until stopped or every camera ended."""
        while any(w.is_alive() for w in self._workers) and not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                if reloader.apply():
                    feedback.use_policies(reloader.config.policies)
                    desk.use_policies(reloader.config.policies)
            monitor.tick()
            self._stop.wait(_MONITOR_PERIOD_S)

    def _shutdown(self, monitor: SiteMonitor, sink: DeliverySink, publisher: MqttPublisher, outbox: Outbox) -> None:
        monitor.status = "stopping"
        self._notifier.stopping()
        for worker in self._workers:
            worker.join(FLUSH_ON_STOP_S)
        sink.close()  # the cameras' last alerts (their incidents' ends) go into the outbox
        flushed = publisher.flush(FLUSH_ON_STOP_S)
        monitor.status = "stopped"
        monitor.write_state()
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
