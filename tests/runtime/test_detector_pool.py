"""DetectorPool, DetectorHandle and FairLock with the real YOLOX-Nano 416 model.

What a site notices: `shared` loads the model once whatever the number of
cameras, `per_camera` once per camera; each camera's stats show its own
inference timings; cameras sharing a session take turns in the order they
asked; and a thread setting that asks for more threads than the box has
cores is logged at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.config import DetectorConfig
from agent.detection.detector import ObjectDetector, StageTimings
from agent.runtime import assembly, detector_pool
from agent.runtime.detector_pool import DetectorPool, FairLock, usable_cores

MODEL = "yolox-nano-416"
CAMERAS = ["gate", "door", "yard"]


@pytest.fixture(scope="module")
def person_image(assets_dir: Path) -> np.ndarray:
    image = cv2.imread(str(assets_dir / "images" / "darknet_person.jpg"))
    if image is None:
        pytest.fail("darknet_person.jpg could not be read")
    return image


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[ObjectDetector]:
    """Every detector the pool loads (the real loader runs; the list only records its results)."""
    loaded: list[ObjectDetector] = []

    def load(config: DetectorConfig, **options: Any) -> ObjectDetector:
        detector = assembly.detector_from_config(config, **options)
        loaded.append(detector)
        return detector

    monkeypatch.setattr(detector_pool, "detector_from_config", load)
    return loaded


@pytest.fixture
def pool_of(loads: list[ObjectDetector]) -> Iterator[Callable[..., DetectorPool]]:
    pools: list[DetectorPool] = []

    def make(sharing: str, cameras: list[str] = CAMERAS, threads: int = 1) -> DetectorPool:
        pools.append(DetectorPool(DetectorConfig(model=MODEL, intra_op_threads=threads), cameras, sharing))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


@pytest.mark.parametrize(("sharing", "sessions"), [("shared", 1), ("per_camera", len(CAMERAS))])
def test_sessions_loaded_per_sharing_mode(
    pool_of: Callable[..., DetectorPool], loads: list[ObjectDetector], sharing: str, sessions: int
) -> None:
    pool = pool_of(sharing)

    assert len(loads) == sessions
    assert pool.sharing == sharing
    for camera in CAMERAS:
        assert pool.handle(camera).class_names == loads[0].class_names
    with pytest.raises(KeyError):
        pool.handle("not-a-camera")


@pytest.mark.parametrize("sharing", ["shared", "per_camera"])
def test_every_handle_detects_what_the_model_finds(
    pool_of: Callable[..., DetectorPool], person_image: np.ndarray, sharing: str
) -> None:
    pool = pool_of(sharing)
    with assembly.detector_from_config(DetectorConfig(model=MODEL, intra_op_threads=1)) as reference:
        expected = reference.detect(person_image)
    assert len(expected) >= 1

    for camera in CAMERAS:
        found = pool.handle(camera).detect(person_image)
        np.testing.assert_allclose(found.box_xyxy_px, expected.box_xyxy_px, atol=1e-3)
        assert found.class_id.tolist() == expected.class_id.tolist()


@pytest.mark.parametrize("sharing", ["shared", "per_camera"])
def test_handles_keep_their_own_last_timings(
    pool_of: Callable[..., DetectorPool], person_image: np.ndarray, sharing: str
) -> None:
    pool = pool_of(sharing)
    gate, door, yard = (pool.handle(c) for c in CAMERAS)

    gate.detect(person_image)
    gate_timings = gate.last_timings
    door.detect(person_image[:, ::-1].copy())

    assert gate.last_timings is gate_timings, "another camera's call must not change this camera's timings"
    assert door.last_timings is not gate_timings and door.last_timings.inference_ms > 0
    assert yard.last_timings == StageTimings(0.0, 0.0, 0.0), "a camera that has not run reports nothing"


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    # Waits for a state, not a duration: the deadline only turns a hang into a failure.
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.001)


def _queue_up(lock: FairLock, names: list[str], granted: list[str]) -> list[threading.Thread]:
    """Start one thread per name, each asking for `lock` only after the one before it has asked."""
    threads = []
    for name in names:
        asked = lock._next_ticket

        def take(name: str = name) -> None:
            with lock:
                granted.append(name)

        thread = threading.Thread(target=take, name=f"test-fairlock-{name}")
        thread.start()
        threads.append(thread)

        def has_asked(asked: int = asked) -> bool:
            return lock._next_ticket == asked + 1

        _wait_until(has_asked, f"{name} asked for the lock")
    return threads


def test_fair_lock_grants_in_the_order_asked() -> None:
    lock = FairLock()
    granted: list[str] = []
    names = [f"cam-{i}" for i in range(6)]

    with lock:  # held, so every thread below has to wait its turn
        threads = _queue_up(lock, names, granted)
        assert granted == []

    for thread in threads:
        thread.join(30)
    assert granted == names


def test_fair_lock_lets_no_thread_overtake_those_waiting() -> None:
    # A camera that finishes a frame and asks again at once goes behind the cameras already waiting.
    lock = FairLock()
    granted: list[str] = []
    lock.__enter__()
    threads = _queue_up(lock, ["door", "yard"], granted)
    lock.__exit__(None, None, None)

    with lock:
        granted.append("gate")

    for thread in threads:
        thread.join(30)
    assert granted == ["door", "yard", "gate"]


def test_fair_lock_is_released_when_the_holder_raises() -> None:
    lock = FairLock()
    with pytest.raises(RuntimeError), lock:
        raise RuntimeError("inference failed")
    granted: list[str] = []

    threads = _queue_up(lock, ["next"], granted)

    threads[0].join(30)
    assert granted == ["next"]


def _oversubscribed(cores: int) -> list[tuple[str, int, int, bool]]:
    return [
        # (sharing, cameras, intra_op_threads per session, warned)
        ("shared", 3, cores, False),
        ("shared", 3, cores + 1, True),
        ("per_camera", 1, cores, False),
        ("per_camera", 2, cores, True),
    ]


@pytest.mark.parametrize(("sharing", "cameras", "threads", "warned"), _oversubscribed(usable_cores()))
def test_more_threads_than_cores_is_logged(
    pool_of: Callable[..., DetectorPool],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    sharing: str,
    cameras: int,
    threads: int,
    warned: bool,
) -> None:
    if threads > 64:
        pytest.skip("intra_op_threads is capped at 64")
    # configure_logging (run by earlier CLI tests) stops agent.* logs at the `agent` logger. Some
    # pytest versions attach caplog there too, so one record may arrive twice: count records, not
    # deliveries.
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)

    with caplog.at_level(logging.WARNING, logger="agent.runtime.detector_pool"):
        pool_of(sharing, CAMERAS[:cameras], threads)

    records = {id(r): r for r in caplog.records}.values()
    warnings = [r.getMessage() for r in records if "detector_threads_oversubscribed" in r.getMessage()]
    if not warned:
        assert warnings == []
        return
    sessions = 1 if sharing == "shared" else cameras
    assert len(warnings) == 1
    assert f"sharing={sharing} sessions={sessions} intra_op_threads={threads} cores={usable_cores()}" in warnings[0]
    assert "advice=" in warnings[0]
