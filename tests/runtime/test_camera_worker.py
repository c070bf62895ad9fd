"""One camera's worker thread: alerts reach the sink, a failing source is retried, a reload swaps rules.

Real parts: the YOLOX-Nano model through the detector pool, clips cut from
vtest.avi, the delivery sink with the site's dispatcher and a SQLite outbox.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import cv2
import pytest

from agent.backoff import Backoff
from agent.config import CameraConfig, SiteConfig, load_config
from agent.delivery.jws import open_envelope
from agent.delivery.outbox import Outbox
from agent.delivery.sink import DeliverySink, OutboxStore
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.camera_worker import CameraWorker
from agent.runtime.detector_pool import DetectorPool
from agent.runtime.scheduler import RateScheduler
from tests.runtime.agent_process import camera, write_site_config

RESTART_MAX_S = 2.0


@pytest.fixture(scope="module")
def short_clip(vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 40 frames (4 s) of the walkway clip: people are in view from the start."""
    path = tmp_path_factory.mktemp("clips") / "walkway-4s.avi"
    cap = cv2.VideoCapture(str(vtest_avi))
    ok, image = cap.read()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (image.shape[1], image.shape[0]))
    for _ in range(40):
        writer.write(image)
        ok, image = cap.read()
        assert ok
    writer.release()
    cap.release()
    return path


class Rig:
    """What the agent gives its workers: a detector pool, a scheduler, a stop event and the delivery sink."""

    def __init__(self, config: SiteConfig, stack: ExitStack) -> None:
        self.config = config
        self.stop = threading.Event()
        self.pool = DetectorPool(config.detector, [c.id for c in config.cameras], "shared", tracker=config.tracker)
        stack.callback(self.pool.close)
        self.outbox = stack.enter_context(Outbox(config.outbox))
        store = OutboxStore(self.outbox, default_expiry_s=None)
        self.sink = stack.enter_context(DeliverySink(dispatcher_from_config(config), store))
        self.scheduler = RateScheduler(config.runtime.max_cpu_fraction)
        self.workers: list[CameraWorker] = []
        stack.callback(self._stop_workers)

    def worker(self, camera_id: str) -> CameraWorker:
        cam = next(c for c in self.config.cameras if c.id == camera_id)
        worker = CameraWorker(
            cam, self.config, self.pool.handle(cam.id), sink=self.sink.submit, scheduler=self.scheduler, stop=self.stop
        )
        self.workers.append(worker)
        return worker

    def details(self) -> list[dict[str, Any]]:
        """`detection` of every alert in the outbox, in delivery order (the sink flushed first)."""
        assert self.sink.flush(60)
        return [
            json.loads(open_envelope(m.message.payload).payload)["detection"] for m in self.outbox.pending(limit=10_000)
        ]

    def _stop_workers(self) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(30)


@pytest.fixture()
def rig_for(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    with ExitStack() as stack:

        def make(*cameras: dict[str, object]) -> Rig:
            path = write_site_config(
                tmp_path / "site.yaml",
                port=1,  # never connected: these tests stop at the outbox
                site_id="worker-site",
                cameras=list(cameras),
                runtime={"camera_restart_max_s": RESTART_MAX_S},
            )
            return Rig(load_config(path), stack)

        yield make


def wait_until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_alerts_of_a_clip_reach_the_sink_and_its_incidents_end_with_it(
    rig_for: Callable[..., Rig], short_clip: Path
) -> None:
    rig = rig_for(camera("gate", str(short_clip), loop=False))
    worker = rig.worker("gate")
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "a file played once ends its camera"
    stats = worker.meter.sample()
    assert stats.state == "ended" and stats.frames_processed > 0 and stats.restarts == 0
    details = rig.details()
    phases = [d["phase"] for d in details]
    assert phases[0] == "start" and phases[-1] == "end"
    assert phases.count("start") == phases.count("end"), "every incident the clip opened is ended"
    assert {d["rule"] for d in details} == {"anyone"}
    assert rig.sink.counters().failures == 0


def test_a_failing_source_is_restarted_with_backoff_while_another_camera_runs(
    rig_for: Callable[..., Rig],
    vtest_avi: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)  # configure_logging may have cut it
    rig = rig_for(camera("good", str(vtest_avi)), camera("broken", str(tmp_path / "no-such-video.avi"), loop=False))
    good, broken = rig.worker("good"), rig.worker("broken")
    with caplog.at_level(logging.INFO, logger="agent.camera"):
        good.start()
        broken.start()
        wait_until(lambda: broken.meter.sample().restarts >= 3 and good.meter.sample().frames_processed >= 10)
        good_stats, broken_stats = good.meter.sample(), broken.meter.sample()
        assert good.is_alive() and broken.is_alive(), "the broken camera is retried, not abandoned"
    assert good_stats.state == "running" and good_stats.frames_detected > 0
    assert broken_stats.state == "failed" and "no-such-video.avi" in broken_stats.last_error
    assert broken_stats.frames_processed == 0
    waits = [r.getMessage() for r in caplog.records if "event=camera_restart_wait camera=broken" in r.getMessage()]
    # By failure number: a handler left by an earlier configure_logging may show a record twice.
    by_failure = {int(n): float(d) for m in waits for d, n in re.findall(r"delay_s=([0-9.]+) failures=([0-9]+)", m)}
    delays = [by_failure[n] for n in (1, 2, 3)]
    backoff = Backoff(initial_s=1.0, max_s=RESTART_MAX_S, jitter=0.0)
    assert delays == [backoff.delay_s(n) for n in (1, 2, 3)] == [1.0, 2.0, 2.0]


def test_a_reload_swaps_the_rules_and_ends_the_old_rules_incidents(
    rig_for: Callable[..., Rig], vtest_avi: Path
) -> None:
    rig = rig_for(camera("gate", str(vtest_avi), rule="before"))
    worker = rig.worker("gate")
    worker.start()
    wait_until(lambda: any(d["rule"] == "before" for d in rig.details()))
    after = camera("gate", str(vtest_avi), rule="after", zone="lawn")
    worker.request_reload(CameraConfig.model_validate(after))
    wait_until(lambda: any(d["rule"] == "after" for d in rig.details()))
    rig.stop.set()
    worker.join(30)
    assert not worker.is_alive()
    rules = [(d["rule"], d["phase"]) for d in rig.details()]
    first_after = rules.index(("after", "start"))
    before = rules[:first_after]
    assert all(rule == "before" for rule, _ in before), "nothing of the old rules follows the new ones"
    assert before[-1] == ("before", "end"), "the old rule's open incident was ended at the swap"
    assert all(rule == "after" for rule, _ in rules[first_after:])
    assert worker.meter.sample().restarts == 0, "the source and detector were kept"
