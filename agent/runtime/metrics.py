"""Prometheus metrics over HTTP, built from the agent's latest stats snapshot.

Off by default; when on it binds to loopback unless the config says
otherwise (the figures say which cameras exist and how busy the site is).
The collector reads the same `SiteStats` the stats topic and the state file
carry, so a scrape never disagrees with them.

Names follow Prometheus' conventions: base units in the name (`_seconds`,
`_bytes`, `_ratio`), counters end in `_total`, durations are histograms
(`edge_agent_inference_seconds`, `edge_agent_frame_process_seconds` per
camera, `edge_agent_alert_delivery_seconds` from the outbox to the broker's
PUBACK). `edge_agent_camera_frames_total{kind}` partitions the frames a
camera sent, so a sum over `kind` is the camera's stream: `detected`,
`no_motion` (processed, nothing moving, not sent to the detector),
`rate_skipped` (left out by design, the detect rate is below the stream's),
`dropped` (lost because the box was too slow) and `damaged`. A camera's own
CPU (its pipeline thread and reader, not the inference threads the cameras
share) is `edge_agent_camera_cpu_seconds_total` and, over the stats window,
`edge_agent_camera_cpu_ratio` (share of one core); `edge_agent_camera_idle`
is 1 while it looks at `motion.idle_fps`. The dashboard
and alert rules in `config/grafana/` and `config/prometheus/` use these names.

The statuses recipients send back are labelled `recipient` (`(unknown)` for
a topic that names none): `edge_agent_feedback_statuses_total{status}`
accepted, `edge_agent_feedback_rejected_total{reason}` refused,
`edge_agent_feedback_duplicates_total`, the histograms
`edge_agent_feedback_received_seconds` and
`edge_agent_feedback_acknowledged_seconds` (alert published, its PUBACK -> its
first `received` / first acknowledgement came back),
`edge_agent_feedback_escalations_total` (incidents sent on for want of an
acknowledgement), `edge_agent_feedback_escalations_pending`, and
`edge_agent_feedback_subscribed` (1 while the broker grants the subscription).
"""

from __future__ import annotations

__all__ = ["MetricsServer", "site_metrics"]

import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import fields
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.alerts.status import STATUS_KINDS
from agent.config import MetricsConfig
from agent.delivery.feedback_check import REJECT_REASONS
from agent.delivery.feedback_stats import UNATTRIBUTED
from agent.delivery.sink import SinkCounters
from agent.errors import AgentError
from agent.histogram import HistogramSnapshot
from agent.logs import log_event
from agent.runtime.stats import CameraStats, SiteStats

_log = logging.getLogger("agent.runtime.metrics")
_P = "edge_agent_"
_SITE = ["site"]
_CAMERA = ["site", "camera"]
_RECIPIENT = ["site", "recipient"]

_CAMERA_GAUGES: tuple[tuple[str, str, Callable[[CameraStats], float]], ...] = (
    ("camera_up", "1 while the camera delivers frames", lambda c: float(c.state == "running")),
    ("camera_target_fps", "configured detect rate, frames per second", lambda c: c.target_fps),
    ("camera_achieved_fps", "frames through the pipeline per second (last 5 s)", lambda c: c.achieved_fps),
    ("camera_motion_duty_ratio", "share of frames with motion (last 5 s)", lambda c: c.motion_duty),
    ("camera_tracks", "objects tracked now", lambda c: float(c.tracks)),
    ("camera_heartbeat_age_seconds", "time since the camera loop last made progress", lambda c: c.heartbeat_age_s),
    (
        "camera_cpu_ratio",
        "CPU of the camera's pipeline thread and reader, share of one core (last 5 s; not the shared inference)",
        lambda c: c.cpu_ms_per_s / 1e3,
    ),
    (
        "camera_idle",
        "1 while the camera looks at motion.idle_fps (nothing moved for idle_after_s)",
        lambda c: float(c.idle),
    ),
)
_CAMERA_COUNTERS: tuple[tuple[str, str, Callable[[CameraStats], int]], ...] = (
    ("camera_slots_missed", "detect slots lost because the previous frame was still in work", lambda c: c.ticks_missed),
    ("camera_restarts", "camera runs ended by an error and restarted", lambda c: c.restarts),
    ("camera_reconnects", "times the source came back after an outage", lambda c: c.reconnects),
)
_CAMERA_CPU = ("camera_cpu_seconds", "CPU time of the camera's pipeline thread and reader since start")
# The partition of `camera_frames_total`: (kind, frames of that kind).
_FRAME_KINDS: tuple[tuple[str, Callable[[CameraStats], int]], ...] = (
    ("detected", lambda c: c.frames_detected),
    ("no_motion", lambda c: c.frames_skipped),
    ("rate_skipped", lambda c: c.frames_rate_skipped),
    ("dropped", lambda c: c.frames_dropped),
    ("damaged", lambda c: c.frames_damaged),
)
_SITE_GAUGES: tuple[tuple[str, str, Callable[[SiteStats], float]], ...] = (
    ("rate_scale", "share of every camera's detect rate granted (1: all of it)", lambda s: s.rate_scale),
    ("outbox_depth", "alerts waiting for the broker", lambda s: float(s.outbox_depth)),
    ("outbox_bytes", "payload bytes waiting for the broker", lambda s: float(s.outbox_bytes)),
    ("broker_connected", "1 while connected to the broker", lambda s: float(s.broker_state == "connected")),
    (
        "outbox_storage_failing",
        "1 while writes to the outbox fail (disk full, I/O error)",
        lambda s: float(bool(s.outbox_storage_problem)),
    ),
    ("delivery_queued_alerts", "alerts waiting for the delivery thread", lambda s: float(s.delivery.queue_depth)),
    ("process_cpu_ratio", "CPU used by the agent, share of the box (last second)", lambda s: s.process.cpu_fraction),
    ("process_rss_bytes", "resident memory of the agent", lambda s: float(s.process.rss_bytes)),
    ("process_threads", "threads of the agent", lambda s: float(s.process.threads)),
    ("process_open_fds", "open file descriptors of the agent", lambda s: float(s.process.open_fds)),
    ("uptime_seconds", "time since the agent started", lambda s: s.uptime_s),
)
_SITE_COUNTERS: tuple[tuple[str, str, Callable[[SiteStats], float]], ...] = (
    ("outbox_dropped", "alerts dropped by the full outbox", lambda s: s.outbox_dropped),
    ("outbox_delivered", "alerts acknowledged by the broker", lambda s: s.outbox_delivered),
    ("outbox_expired", "alerts dropped past their expiry before the broker took them", lambda s: s.outbox_expired),
    ("outbox_rejected", "alerts the broker refused (moved aside in the outbox)", lambda s: s.outbox_rejected),
    ("outbox_storage_errors", "outbox writes that failed (disk full, I/O error)", lambda s: s.outbox_storage_errors),
    ("outbox_unstored", "messages that could not be stored in the outbox", lambda s: s.outbox_unstored),
    (
        "publisher_drain_errors",
        "failed steps of the publisher's outbox drain, retried with backoff",
        lambda s: s.publisher.storage_errors,
    ),
    (
        "mqtt_session_takeovers",
        "times another client with the site's client id took the MQTT session (a cloned box, a copied config)",
        lambda s: s.publisher.session_takeovers,
    ),
    ("state_write_failures", "state files that could not be written", lambda s: s.state_write_failures),
    ("process_cpu_seconds", "CPU time of the agent, user and system", lambda s: s.process.cpu_seconds),
)
# The delivery thread's counters (`SinkCounters`), by field: (metric name, help).
_SINK_COUNTERS: dict[str, tuple[str, str]] = {
    "alerts_submitted": ("delivery_alerts_submitted", "alerts the cameras handed to the delivery thread"),
    "messages_delivered": ("delivery_messages_stored", "per-recipient messages the outbox accepted"),
    "messages_refused": ("delivery_messages_refused", "per-recipient messages the outbox's drop rule turned down"),
    "snapshots_shed": ("delivery_snapshots_shed", "alert frames let go because the queue held enough"),
    "snapshots_withheld": ("delivery_snapshots_withheld", "messages sent with a withheld-snapshot note"),
    "copies_withheld": ("delivery_copies_withheld", "copies an agreement kept back (not in force, dismissed)"),
    "copies_held": ("delivery_copies_held", "copies held for their agreement's verifier"),
    "submits_blocked": ("delivery_submits_blocked", "times a camera waited for room in the delivery queue"),
    "failures": ("delivery_failures", "messages or recipients lost to an error while routing, storing or auditing"),
}
# Gauges among the sink's fields (the rest are counters).
_SINK_GAUGE_FIELDS = frozenset({"queue_depth"})


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(_P + name, doc, labels=labels)


def _add_histogram(family: HistogramMetricFamily, labels: list[str], snapshot: HistogramSnapshot) -> None:
    buckets = [("+Inf" if math.isinf(le) else repr(le), float(n)) for le, n in snapshot.cumulative()]
    family.add_metric(labels, buckets, snapshot.sum_s)


def site_metrics(stats: SiteStats) -> Iterator[Metric]:
    """Every metric of one snapshot (what a scrape returns)."""
    yield from _camera_metrics(stats)
    site = [stats.site_id]
    for name, doc, read in _SITE_GAUGES:
        gauge = GaugeMetricFamily(_P + name, doc, labels=_SITE)
        gauge.add_metric(site, read(stats))
        yield gauge
    for name, doc, total in _SITE_COUNTERS:
        counter = CounterMetricFamily(_P + name, doc, labels=_SITE)
        counter.add_metric(site, float(total(stats)))
        yield counter
    for sink_field in fields(SinkCounters):
        if sink_field.name in _SINK_GAUGE_FIELDS:
            continue
        # A counter added to the sink later is still exported (under its own name) rather than failing the scrape.
        name, doc = _SINK_COUNTERS.get(sink_field.name, (f"delivery_{sink_field.name}", sink_field.name))
        counter = CounterMetricFamily(_P + name, doc, labels=_SITE)
        counter.add_metric(site, float(getattr(stats.delivery, sink_field.name)))
        yield counter
    delivery = _histogram(
        "alert_delivery_seconds", "time from an alert entering the outbox to the broker's PUBACK", _SITE
    )
    _add_histogram(delivery, site, stats.publisher.delivery_seconds)
    yield delivery
    yield from _feedback_metrics(stats)


def _feedback_metrics(stats: SiteStats) -> Iterator[Metric]:
    site, feedback = stats.site_id, stats.feedback
    subscribed = GaugeMetricFamily(
        _P + "feedback_subscribed", "1 while the broker grants the subscription to recipients' statuses", labels=_SITE
    )
    subscribed.add_metric([site], float(feedback.subscribed))
    yield subscribed
    accepted = CounterMetricFamily(
        _P + "feedback_statuses", "signed statuses accepted from a recipient, by kind", labels=[*_RECIPIENT, "status"]
    )
    rejected = CounterMetricFamily(
        _P + "feedback_rejected",
        "statuses refused (forged, unknown key, malformed, unknown alert), by reason",
        labels=[*_RECIPIENT, "reason"],
    )
    duplicates = CounterMetricFamily(
        _P + "feedback_duplicates", "statuses received again (same status_id), ignored", labels=_RECIPIENT
    )
    escalated = CounterMetricFamily(
        _P + "feedback_escalations",
        "incidents sent on to escalate_to because no acknowledgement came in time",
        labels=_RECIPIENT,
    )
    pending = GaugeMetricFamily(
        _P + "feedback_escalations_pending", "incidents waiting for this recipient's acknowledgement", labels=_RECIPIENT
    )
    received = _histogram(
        "feedback_received_seconds", "time from an alert's publish (PUBACK) to its first received status", _RECIPIENT
    )
    acknowledged = _histogram(
        "feedback_acknowledged_seconds",
        "time from an alert's publish (PUBACK) to its first acknowledging status",
        _RECIPIENT,
    )
    for r in feedback.recipients:
        labels = [site, r.recipient]
        for kind in STATUS_KINDS:
            accepted.add_metric([*labels, kind], float(r.statuses.get(kind, 0)))
        # Every reason from zero for the configured recipients, so a rate over them starts at 0.
        reasons = REJECT_REASONS if r.recipient != UNATTRIBUTED else ()
        for reason in sorted({*reasons, *r.rejected}):
            rejected.add_metric([*labels, reason], float(r.rejected.get(reason, 0)))
        duplicates.add_metric(labels, float(r.duplicates))
        escalated.add_metric(labels, float(r.escalated))
        pending.add_metric(labels, float(r.escalations_pending))
        _add_histogram(received, labels, r.received_seconds)
        _add_histogram(acknowledged, labels, r.acknowledged_seconds)
    yield from (accepted, rejected, duplicates, escalated, pending, received, acknowledged)


def _camera_metrics(stats: SiteStats) -> Iterator[Metric]:
    for name, doc, read in _CAMERA_GAUGES:
        gauge = GaugeMetricFamily(_P + name, doc, labels=_CAMERA)
        for cam in stats.cameras:
            gauge.add_metric([stats.site_id, cam.camera_id], read(cam))
        yield gauge
    for name, doc, count in _CAMERA_COUNTERS:
        counter = CounterMetricFamily(_P + name, doc, labels=_CAMERA)
        for cam in stats.cameras:
            counter.add_metric([stats.site_id, cam.camera_id], float(count(cam)))
        yield counter
    cpu = CounterMetricFamily(_P + _CAMERA_CPU[0], _CAMERA_CPU[1], labels=_CAMERA)
    for cam in stats.cameras:
        cpu.add_metric([stats.site_id, cam.camera_id], cam.cpu_seconds)
    yield cpu
    frames = CounterMetricFamily(
        _P + "camera_frames",
        "frames the camera sent, by what became of them (the kinds add up to the stream)",
        labels=[*_CAMERA, "kind"],
    )
    for kind, read_count in _FRAME_KINDS:
        for cam in stats.cameras:
            frames.add_metric([stats.site_id, cam.camera_id, kind], float(read_count(cam)))
    yield frames
    inference = _histogram("inference_seconds", "ONNX Runtime time per detector call", _CAMERA)
    process = _histogram("frame_process_seconds", "wall time of one frame through the pipeline", _CAMERA)
    for cam in stats.cameras:
        _add_histogram(inference, [stats.site_id, cam.camera_id], cam.inference_seconds)
        _add_histogram(process, [stats.site_id, cam.camera_id], cam.process_seconds)
    yield inference
    yield process


class _SiteCollector(Collector):
    def __init__(self, latest: Callable[[], SiteStats | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        stats = self._latest()
        if stats is not None:
            yield from site_metrics(stats)


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
