"""The collector fed stats built the way the agent builds them: every counter of the delivery
thread is exported, the frame kinds add up to what the source read, and promtool accepts it.
(A running agent's own exposition is checked in tests/runtime/test_running_agent.py.)"""

from __future__ import annotations

from dataclasses import fields

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.delivery.sink import SinkCounters
from agent.runtime.metrics import site_metrics
from agent.runtime.stats import CameraMeter, ProcessStats, SiteStats
from agent.sources.source_stats import SourceStats
from tests.ops.prometheus_files import promtool


class _Snapshot:
    def __init__(self, stats: SiteStats) -> None:
        self._stats = stats

    def collect(self):  # type: ignore[no-untyped-def]
        return site_metrics(self._stats)


def _exposition() -> str:
    meter = CameraMeter("gate", 5.0)
    # First run: 30 frames read, 12 taken (2 of them too late), then the camera restarts.
    meter.attach_source(lambda: SourceStats(True, 30, 2, 1, 0, 16))
    meter.attach_source(lambda: SourceStats(True, 10, 0, 0, 1, 5))
    for n in range(17):
        meter.frame_done(detected=n % 3 != 0, motion=True, inference_ms=12.0, process_ms=20.0, tracks=1)
    camera = meter.sample()
    counters = SinkCounters(**{f.name: n + 1 for n, f in enumerate(fields(SinkCounters))})
    stats = SiteStats(
        "site-a", 0.0, 60.0, 1.0, (camera,), 0, 0, 0, 0, "connected", ProcessStats(0.1, 2**28, 9, 2), delivery=counters
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_every_delivery_counter_is_exported() -> None:
    names = {s.name for f in text_string_to_metric_families(_exposition()) for s in f.samples}
    delivery = {n for n in names if n.startswith("edge_agent_delivery_")}
    assert len(delivery) == len(fields(SinkCounters))


def test_frame_kinds_add_up_over_camera_restarts() -> None:
    samples = {
        s.labels["kind"]: s.value
        for f in text_string_to_metric_families(_exposition())
        for s in f.samples
        if s.name == "edge_agent_camera_frames_total"
    }
    # Both runs' source counters are kept: 21 skipped by rate, 2 dropped, 1 damaged; 17 processed.
    assert samples == {"detected": 11, "no_motion": 6, "rate_skipped": 21, "dropped": 2, "damaged": 1}


def test_promtool_accepts_the_exposition() -> None:
    run = promtool("check", "metrics", input_text=_exposition())
    assert run.returncode == 0 and not (run.stdout + run.stderr).strip(), run.stdout + run.stderr


def _idle_camera_exposition() -> str:
    meter = CameraMeter("yard", 5.0)
    meter.attach_source(lambda: SourceStats(True, 40, 0, 0, 0, 32, reader_cpu_s=0.25))
    meter.thread_cpu(0.0)
    meter.sample()
    meter.thread_cpu(1.5)  # the pipeline thread's CPU time since it started
    meter.set_idle(True)
    stats = SiteStats(
        "site-a", 0.0, 60.0, 1.0, (meter.sample(),), 0, 0, 0, 0, "connected", ProcessStats(0.1, 2**28, 9, 2)
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_an_idle_camera_and_its_own_cpu_are_exported() -> None:
    text = _idle_camera_exposition()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["edge_agent_camera_idle"] == 1
    # Pipeline thread and reader together, since start; the ratio is the same time over the window.
    assert samples["edge_agent_camera_cpu_seconds_total"] == 1.75
    assert samples["edge_agent_camera_cpu_ratio"] > 0
    run = promtool("check", "metrics", input_text=text)
    assert run.returncode == 0 and not (run.stdout + run.stderr).strip(), run.stdout + run.stderr
