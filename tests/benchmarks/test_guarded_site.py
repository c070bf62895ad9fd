"""The guarded-site workload is what its docstring says: reproducible from a seed, real walkers that
the product sees, walks where the benchmark expects them, and configs the agent accepts."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config import DetectorConfig, load_config
from agent.runtime.assembly import detector_from_config
from benchmarks import guarded_capacity, guarded_site
from benchmarks.guarded_capacity import RunSpec
from benchmarks.guarded_site import QUIET_START_S, SIZE_WH, CameraClip, GuardedSite, Walk


def _decoded(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    ok, image = cap.read()
    while ok:
        frames.append(image)
        ok, image = cap.read()
    cap.release()
    return frames


@pytest.fixture(scope="module")
def walkers(assets_dir: Path) -> list[guarded_site._Walker]:
    return guarded_site._walkers()


def test_an_idle_camera_is_the_same_file_for_the_same_seed(tmp_path: Path, walkers: list) -> None:
    a = guarded_site._idle_camera(tmp_path / "a.mp4", 7, 0, 2.0, walkers)
    b = guarded_site._idle_camera(tmp_path / "b.mp4", 7, 0, 2.0, walkers)
    other = guarded_site._idle_camera(tmp_path / "c.mp4", 8, 0, 2.0, walkers)
    fa, fb, fc = _decoded(a.path), _decoded(b.path), _decoded(other.path)
    assert len(fa) == len(fb) == 30 and fa[0].shape == (SIZE_WH[1], SIZE_WH[0], 3)
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    # Another seed: another cut of the background, other noise.
    assert np.abs(fa[0].astype(int) - fc[0].astype(int)).mean() > 5


def test_an_idle_camera_changes_only_by_noise_and_light_between_walks(tmp_path: Path, walkers: list) -> None:
    frames = _decoded(guarded_site._idle_camera(tmp_path / "idle.mp4", 3, 1, 4.0, walkers).path)
    # Four seconds, before any walk may start: frame to frame only sensor noise and compression.
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in pairwise(frames)]
    assert max(diffs) < 4.0


def test_walks_keep_the_quiet_start_and_the_end_clear_and_never_overlap() -> None:
    for seed in range(20):
        plans = guarded_site._walks(np.random.default_rng(seed), 300.0, 8)
        again = guarded_site._walks(np.random.default_rng(seed), 300.0, 8)
        assert plans == again
        walks = [p[0] for p in plans]
        assert walks, "300 s with a walk every 45 s on average has walks"
        assert walks[0].start_s >= QUIET_START_S and walks[-1].end_s <= 300.0 - 4.0
        assert all(a.end_s < b.start_s for a, b in pairwise(walks))
        # A walker's pace: the frame crossed in 3-15 s.
        assert all(3.0 < w.end_s - w.start_s < 15.0 for w in walks)


def test_a_pasted_walker_is_a_person_to_the_product_and_the_background_is_not(walkers: list) -> None:
    background = guarded_site._to_16_9(guarded_site._median(guarded_site._frames("videos/vtest.avi", 400)))
    found = []
    with detector_from_config(DetectorConfig(model="yolox-nano-416", intra_op_threads=1)) as detector:
        person = detector.class_names.index("person")

        def people_at_the_walk(image: np.ndarray) -> bool:
            dets = detector.detect(image)
            people = dets.box_xyxy_px[(dets.class_id == person) & (dets.score > 0.5)]
            return any(x0 < 300 and x1 > 260 and y1 > 300 for x0, _, x1, y1 in people)

        assert not people_at_the_walk(background)
        for which, walker in enumerate(walkers[:4]):
            image = background.copy()
            guarded_site._paste(image, walker, 5, 150, 250.0, 330, mirror=which % 2 == 1)
            found.append(people_at_the_walk(image))
    assert len(found) == 4 and all(found)


def test_capacity_configs_load_in_the_agent(tmp_path: Path) -> None:
    clips = []
    for i in range(16):
        path = tmp_path / f"cam-{i:02d}.mp4"
        path.write_bytes(b"")
        kind = "busy" if i % 4 == 3 else "idle"
        clips.append(
            CameraClip(path.stem, path, kind, "videos/vtest.avi", (Walk(14.0, 20.0),) if kind == "idle" else ())
        )
    site = GuardedSite(1, 40.0, tuple(clips))
    for spec in (RunSpec(16), RunSpec(8, regions=False, idle=False)):
        config = load_config(guarded_capacity.site_config(tmp_path / "runs", site, spec, 1883))
        assert [c.id for c in config.cameras] == [c.camera_id for c in clips[: spec.cameras]]
        motion = config.cameras[0].motion
        assert motion.mode == ("regions" if spec.regions else "on_motion")
        assert (motion.idle_after_s is not None) == spec.idle
        assert all(c.detect_fps == guarded_capacity.DETECT_FPS and c.loop for c in config.cameras)


def test_looked_at_rate_is_measured_while_something_moves() -> None:
    # Samples every 0.5 s from t=0: a busy camera at 5 fps throughout, an idle one at 1 fps
    # that wakes at 21 s for a walk of 20-26 s.
    series = []
    busy = idle = 0
    for k in range(81):
        t = k * 0.5
        series.append({"busy": (t, busy, False, 0.0), "idle": (t, idle, t < 21 or t > 27, 0.0)})
        busy += 2 if k % 2 else 3
        idle += 2 if 21 <= t < 26 else (1 if k % 2 else 0)
    fps = guarded_capacity._moving_fps(series, 0.0, 40.0, {"busy": None, "idle": [(20.0, 26.0)], "none": []})
    assert fps["busy"] == pytest.approx(5.0, abs=0.1)
    # From 1 s after the walker enters (a camera looking at 1 fps may see it up to 1 s late).
    assert fps["idle"] == pytest.approx(4.0, abs=0.25)
    assert "none" not in fps
