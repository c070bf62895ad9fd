"""`detection.sequence` counts one camera's messages from the agent's start: a reload or a restart never resets it.

Real parts: the YOLOX-Nano model through the detector pool, the walkway
clip played at its own pace by the camera worker, a reload through
`request_reload`. The restart is forced by the alert sink failing once (as a
bug in delivering one frame's alerts would): the worker restarts the camera
with its usual backoff and the numbering must go on from where it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.alerts.schema import Alert, DetectionDetails
from agent.config import CameraConfig, load_config
from agent.runtime.camera_worker import CameraWorker
from agent.runtime.detector_pool import DetectorPool
from agent.runtime.scheduler import RateScheduler
from agent.values.alert_moment import AlertMoment
from tests.runtime.agent_process import camera, write_site_config


class RecordingSink:
    """Keeps every alert handed to it, in order; fails once when told to (after keeping that call's alerts)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.fail_next = False
        self._lock = threading.Lock()

    def __call__(self, alerts: tuple[Alert, ...], moment: AlertMoment | None) -> None:
        with self._lock:
            self.alerts.extend(alerts)
            if alerts and self.fail_next:
                self.fail_next = False
                raise RuntimeError("delivery failed for this frame")

    def snapshot(self) -> list[Alert]:
        with self._lock:
            return list(self.alerts)


def wait_until(condition: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_sequence_runs_on_across_a_reload_and_a_restart(tmp_path: Path, vtest_avi: Path) -> None:
    path = write_site_config(
        tmp_path / "site.yaml",
        port=1,
        site_id="seq-site",
        cameras=[camera("gate", str(vtest_avi), loop=False, rule="before")],
        runtime={"camera_restart_max_s": 1},
    )
    config = load_config(path)
    pool = DetectorPool(config.detector, ["gate"], "shared", tracker=config.tracker)
    sink = RecordingSink()
    stop = threading.Event()
    worker = CameraWorker(
        config.cameras[0], config, pool.handle("gate"), sink=sink, scheduler=RateScheduler(0.9), stop=stop
    )
    try:
        worker.start()
        wait_until(lambda: len(sink.snapshot()) >= 2)
        after = CameraConfig.model_validate(camera("gate", str(vtest_avi), loop=False, rule="after"))
        worker.request_reload(after)
        wait_until(lambda: any(a.detection.rule == "after" for a in sink.snapshot()))
        sink.fail_next = True
        wait_until(lambda: worker.meter.sample().restarts >= 1)
        seen = len(sink.snapshot())
        wait_until(lambda: len(sink.snapshot()) >= seen + 2)
    finally:
        stop.set()
        worker.join(30)
        pool.close()
    details = [a.detection for a in sink.snapshot()]
    assert worker.meter.sample().restarts >= 1, "the camera was restarted"
    assert {d.rule for d in details} == {"before", "after"}
    assert [d.sequence for d in details] == list(range(1, len(details) + 1))


def test_the_schema_says_the_sequence_survives_reloads_and_restarts() -> None:
    description = DetectionDetails.model_fields["sequence"].description or ""
    assert "agent's start" in description and "reload" in description and "restart" in description


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    left = {t.name for t in threading.enumerate()} - before
    assert not any(name.startswith("cam-") for name in left), left
