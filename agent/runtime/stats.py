"""Run-time statistics: per-camera meters and the site snapshot built from them.

A `CameraMeter` is written by its camera thread (cumulative counters, one
lock) and read by the agent's monitor, which once a second turns every
meter into a frozen `CameraStats` over a sliding window and wraps them with
delivery, outbox, broker and process figures into one `SiteStats`. Everything that
reports (the stats topic, the state file, Prometheus, the rate scheduler)
reads that one snapshot, so they always agree.

Durations are kept as histograms (`agent.histogram`: counts per bucket
since start, in seconds) beside the windowed means in milliseconds that the
stats topic has always carried.
"""

from __future__ import annotations

__all__ = ["CameraMeter", "CameraStats", "ProcessSampler", "ProcessStats", "SiteStats"]

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import psutil

from agent.delivery.break_glass_stats import BreakGlassCounters
from agent.delivery.feedback_stats import FeedbackCounters
from agent.delivery.publisher import PublisherCounters
from agent.delivery.sink import SinkCounters
from agent.histogram import FRAME_BUCKETS_S, DurationHistogram, HistogramSnapshot
from agent.sources.source_stats import SourceStats

CameraState = str  # "starting" | "running" | "unavailable" | "failed" | "ended"


@dataclass(frozen=True, slots=True)
class CameraStats:
    """One camera over the last window (rates) and since start (totals).

    Attributes:
        state: starting, running, unavailable (source reconnecting), failed
            (restarting after an error) or ended (a file played once).
        target_fps: the configured detect rate; achieved_fps: frames through
            the pipeline per second over the window.
        frames_in: frames decoded by the source; frames_processed: through the
            pipeline; frames_detected: sent to the detector; frames_skipped:
            the motion gate found nothing moving; frames_rate_skipped: decoded
            frames left out by design because the detect rate is below the
            stream's; frames_dropped: decoded frames lost because the camera
            was still busy when it was due for one (the box is too slow; before
            frames_rate_skipped existed this counted both); frames_damaged:
            skipped as unreadable; ticks_missed: detect slots lost because the
            camera was still busy with the previous frame.
        inference_ms: mean ONNX Runtime time per detector call (window).
        process_ms: mean wall time of one frame through the pipeline (window).
        motion_duty: share of frames with motion (window).
        heartbeat_age_s: time since the camera loop last made progress.
        reconnects: times the source came back after an outage.
        inference_seconds: every detector call's ONNX Runtime time since start (histogram).
        process_seconds: every frame's wall time through the pipeline since start (histogram).
        cpu_ms_per_s: CPU milliseconds per second (window) of the camera's own threads, its
            pipeline thread and its source's reader (`time.thread_time`); ONNX Runtime's pool
            threads, shared by the cameras, are not in it.
        idle: the camera is looking at `motion.idle_fps` (no motion and no tracks for `idle_after_s`).
        cpu_seconds: the same threads' CPU time since start (what `cpu_ms_per_s` is the rate of).
    """

    camera_id: str
    state: CameraState
    target_fps: float
    achieved_fps: float
    frames_in: int
    frames_processed: int
    frames_detected: int
    frames_skipped: int
    frames_dropped: int
    frames_damaged: int
    ticks_missed: int
    inference_ms: float
    process_ms: float
    motion_duty: float
    tracks: int
    restarts: int
    heartbeat_age_s: float
    last_error: str
    frames_rate_skipped: int
    reconnects: int
    inference_seconds: HistogramSnapshot
    process_seconds: HistogramSnapshot
    cpu_ms_per_s: float = 0.0
    idle: bool = False
    cpu_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """This process: CPU as a share of the whole box (0-1) over the last interval and as seconds
    since start, resident memory, threads and open file descriptors."""

    cpu_fraction: float
    rss_bytes: int
    threads: int
    cpu_count: int
    cpu_seconds: float = 0.0
    open_fds: int = 0


@dataclass(frozen=True, slots=True)
class SiteStats:
    """The agent at one moment (see the module docstring).

    `delivery` is the delivery thread's counters (JSON key `delivery`): alerts
    submitted, messages delivered and refused, snapshots shed and withheld,
    camera waits for room, failures, and the alerts queued now. `publisher`
    is the publisher's: publishes the broker refused, failed drain steps, the
    delivery-time histogram (outbox to PUBACK) and MQTT session take-overs. `outbox_expired` and
    `outbox_rejected` are the outbox's totals of messages past their expiry
    and refused by the broker; `state_write_failures` counts state files that
    could not be written. `outbox_storage_errors` and `outbox_unstored` count
    outbox operations that failed in storage (the disk full) and the messages
    that could not be stored since start; `outbox_storage_problem` is the
    failure going on now ('' when writes work). `broker_warning` says, while
    it lasts, that another agent keeps taking this client id's MQTT session.
    `feedback` is what the recipients sent back (`agent.delivery.feedback_stats`):
    per recipient, statuses accepted by kind and rejected by reason, the time
    from an alert's publish (its PUBACK) to its first `received` and its first
    acknowledgement (histograms), escalations fired and pending.
    `agreement_warnings` says which sharing agreements have ended, have not
    begun or end within their `warn_before_days`; `break_glass` counts the
    recipients' break-glass requests, grants, refusals and ends.
    """

    site_id: str
    ts_unix_s: float
    uptime_s: float
    rate_scale: float
    cameras: tuple[CameraStats, ...]
    outbox_depth: int
    outbox_bytes: int
    outbox_dropped: int
    outbox_delivered: int
    broker_state: str
    process: ProcessStats
    delivery: SinkCounters = field(default_factory=SinkCounters)
    publisher: PublisherCounters = field(default_factory=PublisherCounters)
    outbox_expired: int = 0
    outbox_rejected: int = 0
    state_write_failures: int = 0
    outbox_storage_errors: int = 0
    outbox_unstored: int = 0
    outbox_storage_problem: str = ""
    broker_warning: str = ""
    feedback: FeedbackCounters = field(default_factory=FeedbackCounters)
    agreement_warnings: tuple[str, ...] = ()
    break_glass: BreakGlassCounters = field(default_factory=BreakGlassCounters)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Totals:
    ts_mono_s: float
    processed: int
    detected: int
    with_motion: int
    missed: int
    inference_ms: float
    process_ms: float
    cpu_s: float


def _add_sources(base: SourceStats, current: SourceStats) -> SourceStats:
    """`current`'s availability with the counters of both."""
    return SourceStats(
        current.available,
        base.frames_read + current.frames_read,
        base.frames_dropped + current.frames_dropped,
        base.frames_damaged + current.frames_damaged,
        base.reconnects + current.reconnects,
        base.frames_rate_skipped + current.frames_rate_skipped,
        base.reader_cpu_s + current.reader_cpu_s,
    )


class CameraMeter:
    """Counters of one camera, written by its thread and sampled by the monitor.

    Args:
        camera_id: the camera.
        target_fps: its configured detect rate.
        window_s: length of the sliding window of the rates and means.
    """

    def __init__(self, camera_id: str, target_fps: float, window_s: float = 5.0) -> None:
        self.camera_id = camera_id
        self._lock = threading.Lock()
        self._target_fps = target_fps
        self._state: CameraState = "starting"
        self._processed = self._detected = self._with_motion = self._missed = 0
        self._inference_ms = self._process_ms = 0.0
        self._tracks = self._restarts = 0
        self._last_error = ""
        self._heartbeat = time.monotonic()
        self._source: Callable[[], SourceStats] | None = None
        self._source_base = SourceStats(False, 0, 0, 0, 0)  # what the sources of ended runs counted
        self._window_s = window_s
        self._samples: deque[_Totals] = deque()
        self._inference_hist = DurationHistogram(FRAME_BUCKETS_S)
        self._process_hist = DurationHistogram(FRAME_BUCKETS_S)
        self._thread_cpu_s = 0.0
        self._idle = False

    # -- camera thread -------------------------------------------------------------------

    def set_state(self, state: CameraState, error: str = "") -> None:
        with self._lock:
            self._state = state
            self._heartbeat = time.monotonic()
            if error:
                self._last_error = error
            if state == "failed":
                self._restarts += 1

    def set_target_fps(self, fps: float) -> None:
        with self._lock:
            self._target_fps = fps

    def attach_source(self, stats: Callable[[], SourceStats] | None) -> None:
        """Read the source's counters from `stats` (None: the run ended); the counters of the
        sources of earlier runs are kept, so the totals only grow across camera restarts."""
        with self._lock:
            if self._source is not None:
                self._source_base = _add_sources(self._source_base, self._source())
            self._source = stats

    def beat(self) -> None:
        """The loop is alive (called on every tick, with or without a frame)."""
        self._heartbeat = time.monotonic()

    def frame_done(self, *, detected: bool, motion: bool, inference_ms: float, process_ms: float, tracks: int) -> None:
        with self._lock:
            self._processed += 1
            self._detected += int(detected)
            self._with_motion += int(motion)
            self._inference_ms += inference_ms if detected else 0.0
            self._process_ms += process_ms
            self._tracks = tracks
            self._heartbeat = time.monotonic()
        if detected:
            self._inference_hist.observe(inference_ms / 1e3)
        self._process_hist.observe(process_ms / 1e3)

    def thread_cpu(self, cpu_s: float) -> None:
        """The camera thread's own CPU time so far (`time.thread_time()` read on that thread)."""
        self._thread_cpu_s = cpu_s

    def set_idle(self, idle: bool) -> None:
        self._idle = idle

    def ticks_missed(self, count: int) -> None:
        with self._lock:
            self._missed += count

    # -- monitor -------------------------------------------------------------------------

    def sample(self) -> CameraStats:
        """Record the totals now and return the stats over the window (monitor thread only)."""
        now = time.monotonic()
        with self._lock:
            totals = _Totals(
                now,
                self._processed,
                self._detected,
                self._with_motion,
                self._missed,
                self._inference_ms,
                self._process_ms,
                0.0,
            )
            current = self._source() if self._source is not None else None
            source = self._source_base if current is None else _add_sources(self._source_base, current)
            state, target, tracks, restarts, error = (
                self._state,
                self._target_fps,
                self._tracks,
                self._restarts,
                self._last_error,
            )
            heartbeat = self._heartbeat
        totals = replace(totals, cpu_s=self._thread_cpu_s + source.reader_cpu_s)
        self._samples.append(totals)
        while len(self._samples) > 2 and now - self._samples[1].ts_mono_s >= self._window_s:
            self._samples.popleft()
        first = self._samples[0]
        span_s = max(1e-6, now - first.ts_mono_s)
        processed = totals.processed - first.processed
        detected = totals.detected - first.detected
        if state == "running" and current is not None and not current.available:
            state = "unavailable"
        return CameraStats(
            camera_id=self.camera_id,
            state=state,
            target_fps=target,
            achieved_fps=round(processed / span_s, 3) if len(self._samples) > 1 else 0.0,
            frames_in=max(source.frames_read, totals.processed),  # no source (a test): what it processed
            frames_processed=totals.processed,
            frames_detected=totals.detected,
            frames_skipped=totals.processed - totals.detected,
            frames_dropped=source.frames_dropped,
            frames_damaged=source.frames_damaged,
            ticks_missed=totals.missed,
            inference_ms=round((totals.inference_ms - first.inference_ms) / detected, 3) if detected else 0.0,
            process_ms=round((totals.process_ms - first.process_ms) / processed, 3) if processed else 0.0,
            motion_duty=round((totals.with_motion - first.with_motion) / processed, 4) if processed else 0.0,
            tracks=tracks,
            restarts=restarts,
            heartbeat_age_s=round(now - heartbeat, 3),
            last_error=error,
            frames_rate_skipped=source.frames_rate_skipped,
            reconnects=source.reconnects,
            inference_seconds=self._inference_hist.snapshot(),
            process_seconds=self._process_hist.snapshot(),
            cpu_ms_per_s=round((totals.cpu_s - first.cpu_s) * 1e3 / span_s, 3) if len(self._samples) > 1 else 0.0,
            idle=self._idle,
            cpu_seconds=round(totals.cpu_s, 3),
        )

    def window_on_time(self) -> tuple[int, int]:
        """(frames processed, slots missed) over the window, for the rate scheduler."""
        if len(self._samples) < 2:
            return 0, 0
        first, last = self._samples[0], self._samples[-1]
        return last.processed - first.processed, last.missed - first.missed


class ProcessSampler:
    """CPU share and memory of this process (psutil), sampled between calls."""

    def __init__(self) -> None:
        self._proc = psutil.Process(os.getpid())
        self._cpus = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        self._proc.cpu_percent(None)  # the first call only sets the reference point

    @property
    def cpu_count(self) -> int:
        return self._cpus

    def sample(self) -> ProcessStats:
        with self._proc.oneshot():
            cpu = self._proc.cpu_percent(None) / 100.0 / self._cpus
            times = self._proc.cpu_times()
            rss = int(self._proc.memory_info().rss)
            threads = self._proc.num_threads()
            fds = self._proc.num_fds() if hasattr(self._proc, "num_fds") else 0  # POSIX only
        return ProcessStats(round(cpu, 4), rss, threads, self._cpus, round(times.user + times.system, 3), fds)
