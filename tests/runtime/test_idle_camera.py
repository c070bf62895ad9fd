"""An idle camera looks at a lower rate, grabs without decoding what it skips, and wakes on motion.

Real parts: the YOLOX-Nano model through the detector pool, a live (looped)
source, and a clip written here with OpenCV: the empty walkway of vtest.avi
(the median of its frames, without the parked vehicles and the figure in the
top corners that the detector takes for objects) with sensor noise, still
for 4 s, then a walker cut from the clip crossing it for 4 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.alerts.schema import Alert
from agent.config import load_config
from agent.evaluation.detection_ap import load_mot_boxes
from agent.motion.idle import IdleWatch
from agent.runtime.camera_worker import CameraWorker
from agent.runtime.detector_pool import DetectorPool
from agent.runtime.scheduler import RateScheduler
from agent.runtime.stats import CameraStats
from agent.values.alert_moment import AlertMoment
from tests.runtime.agent_process import camera, write_site_config

STILL_FRAMES = WALK_FRAMES = 40  # at 10 fps: 4 s each


@pytest.fixture(scope="module")
def still_then_walker(vtest_avi: Path, assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cap = cv2.VideoCapture(str(vtest_avi))
    frames = []  # one in 20: enough for the median to lose the walkers
    ok, image = cap.read()
    while ok:
        frames.append(image)
        for _ in range(20):
            ok = cap.grab()
        ok, image = cap.retrieve() if ok else (False, None)
    cap.release()
    empty = np.ascontiguousarray(np.median(np.stack(frames), axis=0).astype(np.uint8)[150:, :640])
    # A walker from the first frame, by its ground-truth box.
    x, y, w, h = (int(v) for v in load_mot_boxes(assets_dir / "videos/PETS09-S2L1/gt/gt.txt")[1][0])
    person = frames[0][y:h, x:w].copy()  # load_mot_boxes gives x1, y1, x2, y2
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("clips") / "still-then-walker.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (empty.shape[1], empty.shape[0]))
    ph, pw = person.shape[:2]
    for i in range(STILL_FRAMES + WALK_FRAMES):
        image = cv2.add(empty, rng.integers(0, 4, empty.shape, dtype=np.uint8))
        if i >= STILL_FRAMES:
            left = 40 + (i - STILL_FRAMES) * 12
            image[150 : 150 + ph, left : left + pw] = person
        writer.write(image)
    writer.release()
    return path


def test_the_idle_watch_goes_idle_after_the_quiet_time_and_wakes_on_activity() -> None:
    watch = IdleWatch(2.0)
    assert [watch.update(t, False) for t in (0.0, 1.0, 1.9, 2.0, 5.0)] == [False, False, False, True, True]
    assert watch.update(5.5, True) is False and watch.update(7.0, False) is False
    assert watch.update(7.5, False) is True
    never = IdleWatch(None)
    assert not any(never.update(t, False) for t in range(100))


def _wait_for(worker: CameraWorker, condition: Callable[[CameraStats], bool], timeout_s: float = 60) -> CameraStats:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = worker.meter.sample()
        if condition(stats):
            return stats
        assert worker.is_alive() and time.monotonic() < deadline, f"not reached: {stats}"
        time.sleep(0.05)


@pytest.fixture()
def worker_for(tmp_path: Path) -> Iterator[Callable[[dict[str, object]], tuple[CameraWorker, list[Alert]]]]:
    with ExitStack() as stack:
        stop = threading.Event()

        def make(motion: dict[str, object]) -> tuple[CameraWorker, list[Alert]]:
            cam = camera("quiet", str(tmp_path / "clip.avi"), loop=True) | {"motion": motion}
            config = load_config(write_site_config(tmp_path / "site.yaml", port=1, site_id="idle", cameras=[cam]))
            pool = DetectorPool(config.detector, ["quiet"], "shared", tracker=config.tracker)
            stack.callback(pool.close)
            alerts: list[Alert] = []

            def sink(batch: tuple[Alert, ...], moment: AlertMoment | None) -> None:
                alerts.extend(batch)

            worker = CameraWorker(
                config.cameras[0],
                config,
                pool.handle("quiet"),
                sink=sink,
                scheduler=RateScheduler(config.runtime.max_cpu_fraction),
                stop=stop,
            )
            stack.callback(worker.join, 30)
            stack.callback(stop.set)
            return worker, alerts

        yield make


def test_an_idle_camera_looks_less_skips_decoding_and_wakes_for_the_walker(
    worker_for: Callable[[dict[str, object]], tuple[CameraWorker, list[Alert]]],
    still_then_walker: Path,
    tmp_path: Path,
) -> None:
    (tmp_path / "clip.avi").symlink_to(still_then_walker)
    worker, alerts = worker_for({"idle_after_s": 1, "idle_fps": 1})
    worker.start()

    idle = _wait_for(worker, lambda s: s.idle)
    later = _wait_for(worker, lambda s: s.idle and s.frames_in >= idle.frames_in + 20)
    # While idle, most frames of the 10 fps stream are grabbed and left out; few are looked at.
    looked = later.frames_processed - idle.frames_processed
    left_out = later.frames_rate_skipped - idle.frames_rate_skipped
    assert looked * 3 <= left_out, (looked, left_out)

    _wait_for(worker, lambda s: not s.idle)
    # The walker raises the alert (on this pass, or on a later one of the looping clip when the box is busy).
    _wait_for(worker, lambda s: bool(alerts), timeout_s=90)
    assert [a.detection.phase for a in alerts][:1] == ["start"], "the walker still raises the alert"
    assert alerts[0].detection.class_name == "person"
    assert idle.cpu_ms_per_s > 0 and worker.meter.sample().cpu_ms_per_s > 0, "the camera's CPU time is reported"


def test_without_idle_after_s_the_camera_keeps_its_rate(
    worker_for: Callable[[dict[str, object]], tuple[CameraWorker, list[Alert]]],
    still_then_walker: Path,
    tmp_path: Path,
) -> None:
    (tmp_path / "clip.avi").symlink_to(still_then_walker)
    worker, _ = worker_for({})
    worker.start()
    first = _wait_for(worker, lambda s: s.frames_in >= 10)
    later = _wait_for(worker, lambda s: s.frames_in >= first.frames_in + 30)
    assert not later.idle
    # 5 fps looked at of a 10 fps stream: about one frame in two, never one in ten.
    assert (later.frames_processed - first.frames_processed) * 3 > later.frames_rate_skipped - first.frames_rate_skipped
