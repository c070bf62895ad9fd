"""The live agent: every enabled camera of a site on its own thread, alerts to the broker.

Each camera thread reads its source (a live stream, or a file played at its
own pace), runs its `CameraPipeline` and puts each outgoing message in the
durable outbox; the publisher drains the outbox to the broker. A camera that
fails is logged and the others keep running. SIGTERM or SIGINT stops the
cameras, ends their open incidents, flushes the outbox for up to
`FLUSH_ON_STOP_S` and publishes the retained `stopped` status.
"""

from __future__ import annotations

__all__ = ["AgentService"]

import logging
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from agent.alerts.schema import Alert
from agent.assembly import detector_from_config, dispatcher_from_config, tracker_from_config
from agent.config.schema import CameraConfig, SiteConfig
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import BrokerUnavailable, MqttPublisher
from agent.dispatch import AlertDispatcher
from agent.errors import AgentError
from agent.frames import Frame
from agent.logs import log_event
from agent.pipeline import CameraPipeline
from agent.privacy.snapshots import AlertMoment
from agent.privacy.audit import AuditLog
from agent.sources.live import LiveSource
from agent.sources.replay import FileReplay
from agent.sources.spec import parse_source

_log = logging.getLogger("agent.service")
FLUSH_ON_STOP_S = 10.0


class AgentService:
    """Runs a site until stopped (or until every non-looping file source has ended)."""

    def __init__(self, config: SiteConfig) -> None:
        self._config = config
        self._stop = threading.Event()
        self._dispatcher: AlertDispatcher = dispatcher_from_config(config)
        self._audit = AuditLog(config.policies.audit_log)
        self._outbox: Outbox | None = None

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log_event(_log, "stop_requested", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        config = self._config
        cameras = [c for c in config.cameras if c.enabled]
        with Outbox(config.outbox) as outbox, MqttPublisher(config.mqtt, config.site.id, outbox) as publisher:
            self._outbox = outbox
            self._wait_for_broker(publisher)
            threads = [
                threading.Thread(target=self._camera_main, args=(cam,), name=f"cam-{cam.id}.pipeline")
                for cam in cameras
            ]
            for t in threads:
                t.start()
            log_event(_log, "agent_started", site=config.site.id, cameras=len(cameras))
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.2)
            flushed = publisher.flush(FLUSH_ON_STOP_S)
            log_event(_log, "agent_stopped", flushed=flushed, outbox_depth=outbox.stats().depth)
        return 0

    def _wait_for_broker(self, publisher: MqttPublisher) -> None:
        # A refused connection (credentials, ACL) is a config error: stop here.
        # An unreachable broker is not: alerts wait in the outbox until it is back.
        try:
            publisher.wait_connected(self._config.mqtt.connect_timeout_s)
        except BrokerUnavailable as err:
            log_event(_log, "broker_unreachable", logging.WARNING, detail=str(err), action="buffering in outbox")

    def _camera_main(self, camera: CameraConfig) -> None:
        try:
            pipeline = CameraPipeline(
                camera, self._config.site, detector_from_config(self._config.detector),
                tracker_from_config(self._config.tracker), status="Actual",
            )
            for frame in self._frames(camera):
                result = pipeline.process(frame)
                self._publish(result.alerts, result.moment)
                if self._stop.is_set():
                    break
            self._publish(pipeline.finish())
        except AgentError as err:
            log_event(_log, "camera_failed", logging.ERROR, camera=camera.id, error=str(err))
        except Exception as err:  # noqa: BLE001 - one camera's bug must not stop the others
            _log.exception("event=camera_crashed camera=%s error=%s", camera.id, err)

    def _frames(self, camera: CameraConfig) -> Iterator[Frame]:
        spec = parse_source(camera.source)
        if spec.kind == "file" and not camera.loop:
            yield from self._paced_file(camera, Path(str(spec.target)))
            return
        with LiveSource(camera.id, camera.source, detect_fps=camera.detect_fps) as live:
            for frame in live.frames():
                yield frame
                if self._stop.is_set():
                    return

    def _paced_file(self, camera: CameraConfig, path: Path) -> Iterator[Frame]:
        """A file played once at its own frame rate, as a camera would deliver it."""
        started_mono = time.monotonic()
        started_utc = datetime.now(UTC)
        for frame in FileReplay(camera.id, path, detect_fps=camera.detect_fps, start_utc=started_utc):
            if self._stop.wait(max(0.0, started_mono + frame.ts_monotonic_s - time.monotonic())):
                return
            yield frame
        log_event(_log, "camera_source_ended", camera=camera.id, source=str(path))

    def _publish(self, alerts: tuple[Alert, ...], moment: AlertMoment | None = None) -> None:
        if self._outbox is None:
            return
        expiry_s = self._config.mqtt.message_expiry_s
        for alert in alerts:
            for message in self._dispatcher.route(alert, moment):
                if self._outbox.put(message.to_outbound(expiry_s)):
                    self._audit.record(message)  # accepted: it will leave the box
                log_event(_log, "alert_queued", camera=alert.detection.camera_id, rule=alert.detection.rule,
                          phase=alert.detection.phase, recipient=message.recipient, alert_id=alert.identifier)
