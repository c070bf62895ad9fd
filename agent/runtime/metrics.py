"""Prometheus metrics over HTTP, built from the agent's latest stats snapshot.

Off by default; when on it binds to loopback unless the config says
otherwise (the figures say which cameras exist and how busy the site is).
The collector reads the same `SiteStats` the stats topic and the state file
carry, so a scrape never disagrees with them.
"""

from __future__ import annotations

__all__ = ["MetricsServer"]

import logging
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.config import MetricsConfig
from agent.errors import AgentError
from agent.logs import log_event
from agent.runtime.stats import CameraStats, SiteStats

_log = logging.getLogger("agent.runtime.metrics")
_P = "edge_agent_"

_CAMERA_GAUGES: tuple[tuple[str, str, Callable[[CameraStats], float]], ...] = (
    ("camera_up", "1 while the camera delivers frames", lambda c: float(c.state == "running")),
    ("camera_target_fps", "configured detect rate", lambda c: c.target_fps),
    ("camera_achieved_fps", "frames through the pipeline per second", lambda c: c.achieved_fps),
    ("camera_inference_ms", "mean ONNX Runtime time per detector call", lambda c: c.inference_ms),
    ("camera_process_ms", "mean pipeline wall time per frame", lambda c: c.process_ms),
    ("camera_motion_duty_ratio", "share of frames with motion", lambda c: c.motion_duty),
    ("camera_tracks", "objects tracked now", lambda c: float(c.tracks)),
)
_CAMERA_COUNTERS: tuple[tuple[str, str, Callable[[CameraStats], int]], ...] = (
    ("in", "decoded by the source", lambda c: c.frames_in),
    ("processed", "through the pipeline", lambda c: c.frames_processed),
    ("detected", "sent to the detector", lambda c: c.frames_detected),
    ("skipped", "not sent to the detector (no motion)", lambda c: c.frames_skipped),
    ("dropped", "replaced by a newer frame before processing", lambda c: c.frames_dropped),
    ("damaged", "unreadable and skipped", lambda c: c.frames_damaged),
)


class _SiteCollector(Collector):
    def __init__(self, latest: Callable[[], SiteStats | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        stats = self._latest()
        if stats is None:
            return
        yield from self._cameras(stats)
        site = [stats.site_id]
        for name, doc, value in (
            ("rate_scale", "share of every camera's detect rate granted (1: all of it)", stats.rate_scale),
            ("outbox_depth", "alerts waiting for the broker", float(stats.outbox_depth)),
            ("outbox_bytes", "payload bytes waiting for the broker", float(stats.outbox_bytes)),
            ("broker_connected", "1 while connected to the broker", float(stats.broker_state == "connected")),
            ("process_cpu_ratio", "CPU used by the agent, share of the box", stats.process.cpu_fraction),
            ("process_rss_bytes", "resident memory of the agent", float(stats.process.rss_bytes)),
            ("uptime_seconds", "time since the agent started", stats.uptime_s),
        ):
            gauge = GaugeMetricFamily(_P + name, doc, labels=["site"])
            gauge.add_metric(site, value)
            yield gauge
        for name, doc, total in (
            ("outbox_dropped", "alerts dropped by the full outbox", stats.outbox_dropped),
            ("outbox_delivered", "alerts acknowledged by the broker", stats.outbox_delivered),
        ):
            counter = CounterMetricFamily(_P + name, doc, labels=["site"])
            counter.add_metric(site, float(total))
            yield counter

    def _cameras(self, stats: SiteStats) -> Iterator[Metric]:
        for name, doc, read in _CAMERA_GAUGES:
            gauge = GaugeMetricFamily(_P + name, doc, labels=["site", "camera"])
            for cam in stats.cameras:
                gauge.add_metric([stats.site_id, cam.camera_id], read(cam))
            yield gauge
        frames = CounterMetricFamily(
            _P + "camera_frames", "frames by what happened to them", labels=["site", "camera", "kind"]
        )
        for kind, _doc, read_count in _CAMERA_COUNTERS:
            for cam in stats.cameras:
                frames.add_metric([stats.site_id, cam.camera_id, kind], float(read_count(cam)))
        yield frames


class MetricsServer:
    """The HTTP endpoint (`/metrics`); a context manager owning its server thread."""

    def __init__(self, config: MetricsConfig, latest: Callable[[], SiteStats | None]) -> None:
        self._config = config
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_SiteCollector(latest))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MetricsServer:
        try:
            self._server, self._thread = start_http_server(self._config.port, self._config.host, self._registry)
        except OSError as err:
            raise AgentError(f"cannot serve metrics on {self._config.host}:{self._config.port}: {err}") from err
        log_event(_log, "metrics_serving", host=self._config.host, port=self._config.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
