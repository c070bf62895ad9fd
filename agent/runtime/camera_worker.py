"""One camera of the live agent: its thread, its source, its pipeline, its restarts.

The worker reads its source at the rate the `RateScheduler` grants (the
camera's `detect_fps` times the site-wide scale), runs the frame through its
`CameraPipeline` and hands the alerts to a sink (in the agent, the delivery
thread's `DeliverySink.submit`, which only queues them: this thread never
signs, encodes or fsyncs). Frames are never queued: a slot missed because
the previous frame was still being processed is counted and skipped. An
error ends only this camera's current run: the worker logs it, reports the
camera failed, waits the site's one retry policy (`agent.backoff.Backoff`,
exponential from 1 s, capped at `runtime.camera_restart_max_s`, no jitter)
and starts the camera again, while the other cameras go on. A reload swaps in a new pipeline built from the new
camera config on the camera's own thread, keeping the source, detector and
tracker (the open incidents of the old rules are ended first) and the
camera's message sequence, so `detection.sequence` counts on across reloads
and restarts for the agent's whole run.

With `motion.idle_after_s` set, a live camera that has seen no motion and
tracked nothing for that long is idle (`agent.motion.idle.IdleWatch`): it
looks at `motion.idle_fps`, its reader only grabs the frames it will not
look at, and the first frame with motion brings back `detect_fps`. A file
played once (replays, tests) keeps its rate. The camera's CPU time (its
pipeline thread and its reader) is in its stats as `cpu_ms_per_s`.
"""

from __future__ import annotations

__all__ = ["AlertSink", "CameraWorker"]

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from agent.alerts.builder import MessageSequence
from agent.alerts.schema import Alert
from agent.backoff import Backoff
from agent.config import CameraConfig, SiteConfig
from agent.errors import AgentError
from agent.logs import log_event
from agent.motion.idle import IdleWatch
from agent.runtime.assembly import camera_pipeline, tracker_from_config
from agent.runtime.detector_pool import DetectorHandle
from agent.runtime.pipeline import CameraPipeline
from agent.runtime.scheduler import RateScheduler
from agent.runtime.stats import CameraMeter
from agent.sources.file_replay import FileReplay
from agent.sources.live import LiveSource
from agent.sources.source_stats import SourceStats
from agent.sources.spec import parse_source
from agent.tracking.bytetrack import ByteTracker
from agent.values.alert_moment import AlertMoment
from agent.values.frames import Frame

_log = logging.getLogger("agent.camera")
AlertSink = Callable[[tuple[Alert, ...], AlertMoment | None], None]
_READ_WAIT_S = 1.0


def _subsampled(stats: SourceStats) -> SourceStats:
    """A replay never drops: what it leaves out is subsampling to the detect rate, by design."""
    return replace(stats, frames_dropped=0, frames_rate_skipped=stats.frames_dropped)


class CameraWorker:
    """Runs one camera on a thread named `cam-<id>.pipeline` until `stop` is set.

    Args:
        camera: the camera's config.
        site: the site config (site identity, tracker settings, restart cap).
        detector: this camera's detector handle.
        sink: receives every alert the pipeline produces, with the frame moment they came from;
            it must not block (the camera's frame loop calls it).
        scheduler: grants the camera's frame rate.
        stop: set to stop every camera.
        on_first_frame: called once with the camera id after its first processed frame.
    """

    def __init__(
        self,
        camera: CameraConfig,
        site: SiteConfig,
        detector: DetectorHandle,
        *,
        sink: AlertSink,
        scheduler: RateScheduler,
        stop: threading.Event,
        on_first_frame: Callable[[str], None] | None = None,
    ) -> None:
        self.camera_id = camera.id
        self.meter = CameraMeter(camera.id, camera.detect_fps)
        self._camera = camera
        self._site = site
        self._detector = detector
        self._sink = sink
        self._scheduler = scheduler
        self._stop = stop
        self._on_first_frame = on_first_frame
        self._pending: CameraConfig | None = None
        self._pending_lock = threading.Lock()
        self._tracker: ByteTracker = tracker_from_config(site.tracker, detector=site.detector)
        self._sequence = MessageSequence()
        # Jitter-free: one box restarting its own camera has no fleet to fall out of step with.
        self._backoff = Backoff(initial_s=1.0, max_s=site.runtime.camera_restart_max_s, jitter=0.0)
        self._idle = IdleWatch(camera.motion.idle_after_s)
        self._was_idle = False
        self._thread = threading.Thread(target=self._main, name=f"cam-{camera.id}.pipeline")

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def request_reload(self, camera: CameraConfig) -> None:
        """Use this camera config from the next frame on (zones, masks, motion, filters, rules, fps)."""
        with self._pending_lock:
            self._pending = camera

    # -- thread ---------------------------------------------------------------------------

    def _main(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._run_once()
                return  # stopped, or a file played once has ended
            except AgentError as err:
                error = str(err)
                log_event(_log, "camera_failed", logging.ERROR, camera=self.camera_id, error=error)
            except Exception as err:  # noqa: BLE001 - one camera's bug must not stop the others
                error = f"{type(err).__name__}: {err}"
                _log.exception("event=camera_crashed camera=%s error=%s", self.camera_id, err)
            failures += 1
            delay_s = self._backoff.delay_s(failures)
            self.meter.set_state("failed", error)
            log_event(_log, "camera_restart_wait", camera=self.camera_id, delay_s=delay_s, failures=failures)
            self._wait_beating(delay_s)

    def _wait_beating(self, delay_s: float) -> None:
        """Wait (stop-aware) while telling the monitor the loop is alive."""
        deadline = time.monotonic() + delay_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.meter.beat()
            self._stop.wait(min(1.0, deadline - time.monotonic()))

    def _run_once(self) -> None:
        pipeline = self._new_pipeline(self._take_pending() or self._camera)
        try:
            for frame in self._frames():
                pipeline = self._maybe_reload(pipeline)
                self._process(pipeline, frame)
        finally:
            self._sink(pipeline.finish(), None)
            self.meter.attach_source(None)

    def _new_pipeline(self, camera: CameraConfig) -> CameraPipeline:
        self._camera = camera
        self._idle = IdleWatch(camera.motion.idle_after_s)
        self._was_idle = False
        self.meter.set_idle(False)
        self.meter.set_target_fps(camera.detect_fps)
        return camera_pipeline(
            camera, self._site.site, self._detector, self._tracker, status="Actual", sequence=self._sequence
        )

    def _take_pending(self) -> CameraConfig | None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
        return pending

    def _maybe_reload(self, pipeline: CameraPipeline) -> CameraPipeline:
        camera = self._take_pending()
        if camera is None:
            return pipeline
        self._sink(pipeline.finish(), None)
        log_event(_log, "camera_reloaded", camera=self.camera_id, zones=len(camera.zones), rules=len(camera.rules))
        return self._new_pipeline(camera)

    def _process(self, pipeline: CameraPipeline, frame: Frame) -> None:
        before = pipeline.motion_counters
        t0 = time.perf_counter()
        result = pipeline.process(frame)
        process_ms = (time.perf_counter() - t0) * 1e3
        after = pipeline.motion_counters
        detected = after.frames_detected > before.frames_detected
        motion = after.frames_with_motion > before.frames_with_motion
        tracks = len(result.tracks.track_id)
        self.meter.frame_done(
            detected=detected,
            motion=motion,
            inference_ms=self._detector.last_timings.inference_ms,
            process_ms=process_ms,
            tracks=tracks,
        )
        idle = self._idle.update(time.monotonic(), motion or tracks > 0)
        if idle != self._was_idle:
            self._was_idle = idle
            self.meter.set_idle(idle)
            log_event(_log, "camera_idle" if idle else "camera_active", camera=self.camera_id, fps=self._look_fps())
        if self._on_first_frame is not None:
            self._on_first_frame(self.camera_id)
            self._on_first_frame = None
        self._sink(result.alerts, result.moment)

    def _look_fps(self) -> float:
        """The rate the camera looks at now: `motion.idle_fps` while idle, else `detect_fps`."""
        return self._camera.motion.idle_fps if self._idle.idle else self._camera.detect_fps

    # -- frames ---------------------------------------------------------------------------

    def _frames(self) -> Iterator[Frame]:
        spec = parse_source(self._camera.source)
        if spec.kind == "file" and not self._camera.loop:
            yield from self._paced_file(Path(str(spec.target)))
            return
        with LiveSource(self.camera_id, self._camera.source, detect_fps=self._camera.detect_fps) as live:
            self.meter.attach_source(lambda: live.stats)
            self.meter.set_state("running")
            yield from self._scheduled(live)

    def _scheduled(self, live: LiveSource) -> Iterator[Frame]:
        """The newest frame at each slot the scheduler grants; slots missed while busy are counted."""
        next_s = time.monotonic()
        while not self._stop.is_set():
            self.meter.beat()
            self.meter.thread_cpu(time.thread_time())
            if self._stop.wait(max(0.0, next_s - time.monotonic())):
                return
            live.detect_fps = self._look_fps()  # a reload or idling may change it: frames skipped vs dropped
            live.decode_all = not self._idle.idle
            frame = live.read(_READ_WAIT_S)
            if frame is not None:
                yield frame
            # Taken after the frame: the first motion of an idle camera brings the full rate at once.
            period_s = self._scheduler.period_s(self._look_fps())
            next_s += period_s
            late_s = time.monotonic() - next_s
            if late_s > 0:
                # Busy past the next slot: skip the slots that passed rather than queue them.
                missed = int(late_s / period_s) + 1 if frame is not None else 0
                self.meter.ticks_missed(missed)
                next_s = time.monotonic()

    def _paced_file(self, path: Path) -> Iterator[Frame]:
        """A file played once at its own frame rate, as a camera would deliver it."""
        self.meter.set_state("running")
        started_mono = time.monotonic()
        replay = FileReplay(self.camera_id, path, detect_fps=self._camera.detect_fps, start_utc=datetime.now(UTC))
        self.meter.attach_source(lambda: _subsampled(replay.stats))
        for frame in replay:
            self.meter.beat()
            self.meter.thread_cpu(time.thread_time())
            if self._stop.wait(max(0.0, started_mono + frame.ts_monotonic_s - time.monotonic())):
                return
            yield frame
        self.meter.set_state("ended")
        log_event(_log, "camera_source_ended", camera=self.camera_id, source=str(path))
