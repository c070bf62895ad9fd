"""Motion gate on real footage and on synthetic scenes."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.detection.crops import CropPlanner, CropSettings
from agent.motion.gate import MotionGate, MotionSettings, merge_boxes
from agent.sources import FileReplay


def _static_scene(seed: int, n: int) -> list[np.ndarray]:
    """A textured still scene with per-frame sensor noise of about +-3 levels."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (1, 1, 3)) + np.linspace(0, 50, 640)[None, :, None]
    base = np.broadcast_to(base, (480, 640, 3)).astype(np.int16)
    return [np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def _moving_square(n: int, x0: int, y0: int) -> list[np.ndarray]:
    """The static scene; from frame 5 on (after warm-up) a red box moves right."""
    frames = _static_scene(1, n)
    for i, f in enumerate(frames[5:], start=5):
        x = x0 + 8 * i
        f[y0 : y0 + 60, x : x + 40] = (20, 30, 240)
    return frames


def test_people_walking_is_motion(vtest_avi: Path) -> None:
    gate = MotionGate(MotionSettings(mode="on_motion"))
    frames = list(islice(FileReplay("gate", vtest_avi, detect_fps=5.0), 40))
    results = [gate.update(f.image_bgr) for f in frames]
    after_warmup = results[gate.settings.warmup_frames :]
    assert sum(r.has_motion for r in after_warmup) >= 0.9 * len(after_warmup)
    boxes = np.vstack([r.regions_xyxy_px for r in after_warmup])
    assert (boxes[:, 2] <= 768).all() and (boxes[:, 3] <= 576).all() and (boxes >= 0).all()
    # Walkers are small: regions cover a minority of the frame, not all of it.
    assert np.median([r.motion_fraction for r in after_warmup]) < 0.2
    assert gate.counters.frames_inspected == 40


def test_static_scene_has_no_motion() -> None:
    gate = MotionGate(MotionSettings(mode="on_motion", warmup_frames=3))
    results = [gate.update(f) for f in _static_scene(0, 30)]
    assert all(r.has_motion for r in results[:3])  # warm-up runs the detector
    assert not any(r.has_motion for r in results[3:])
    c = gate.counters
    assert (c.frames_inspected, c.frames_with_motion, c.frames_detected) == (30, 3, 3)
    assert c.detected_fraction == pytest.approx(0.1)


def test_always_mode_detects_every_frame_without_computing_motion() -> None:
    gate = MotionGate(MotionSettings(mode="always", warmup_frames=3))
    results = [gate.update(f) for f in _static_scene(0, 10)]
    # The gate is off: a static scene still goes to the detector, frame after frame.
    assert all(r.has_motion and r.regions_xyxy_px.tolist() == [[0, 0, 640, 480]] for r in results)
    assert gate.counters.frames_detected == 10 and gate.counters.detected_fraction == 1.0


def test_moving_object_found_where_it_is() -> None:
    gate = MotionGate(MotionSettings(warmup_frames=3))
    results = [gate.update(f) for f in _moving_square(20, 100, 300)]
    last = results[-1]
    assert last.has_motion and len(last.regions_xyxy_px) == 1
    x1, y1, x2, y2 = last.regions_xyxy_px[0]
    square_x = 100 + 8 * 19
    assert x1 <= square_x + 5 and x2 >= square_x + 35 and y1 <= 305 and y2 >= 355
    assert y1 > 250 and y2 < 420


def test_mask_hides_motion_inside_it() -> None:
    mask = ((0.0, 250.0), (640.0, 250.0), (640.0, 420.0), (0.0, 420.0))
    gate = MotionGate(MotionSettings(warmup_frames=3, mask_polygons_px=(mask,)))
    results = [gate.update(f) for f in _moving_square(20, 100, 300)]
    assert not any(r.has_motion for r in results[3:])
    assert all(r.motion_fraction == 0.0 for r in results[3:])


def test_mask_on_real_footage_removes_regions_under_it(vtest_avi: Path) -> None:
    whole = ((0.0, 0.0), (768.0, 0.0), (768.0, 576.0), (0.0, 576.0))
    gate = MotionGate(MotionSettings(mask_polygons_px=(whole,)))
    results = [gate.update(f.image_bgr) for f in islice(FileReplay("gate", vtest_avi), 20)]
    assert not any(r.has_motion for r in results[gate.settings.warmup_frames :])


def test_a_new_frame_size_starts_a_new_background() -> None:
    gate = MotionGate(MotionSettings(warmup_frames=3))
    for frame in _static_scene(0, 10):
        gate.update(frame)
    smaller = [cv2.resize(f, (320, 240), interpolation=cv2.INTER_AREA) for f in _static_scene(0, 6)]

    results = [gate.update(f) for f in smaller]

    # The 640x480 background cannot be compared with a 320x240 frame: warm up again, in the new size.
    assert all(r.has_motion and r.regions_xyxy_px.tolist() == [[0, 0, 320, 240]] for r in results[:3])
    assert not any(r.has_motion for r in results[3:])
    assert gate.counters.frames_inspected == 16


def test_merge_joins_boxes_within_the_gap() -> None:
    boxes = np.array([[10, 10, 50, 50], [55, 10, 90, 50], [300, 300, 320, 330]], np.float32)
    merged = merge_boxes(boxes, gap_px=10)
    assert merged.tolist() == [[10, 10, 90, 50], [300, 300, 320, 330]]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        MotionSettings(mode="sometimes")  # type: ignore[arg-type]


def test_regions_mode_gates_like_on_motion_and_its_crops_hold_the_mover() -> None:
    gate = MotionGate(MotionSettings(mode="regions"))
    still = [gate.update(f) for f in _static_scene(0, 12)]
    assert not any(gate.should_detect(r) for r in still[gate.settings.warmup_frames :])
    gate = MotionGate(MotionSettings(mode="regions"))
    frames = _moving_square(20, 40, 200)
    results = [gate.update(f) for f in frames]
    planner = CropPlanner(CropSettings(min_side_px=320))
    for i, r in enumerate(results[8:], start=8):
        assert gate.should_detect(r)
        [crop] = planner.plan(r.regions_xyxy_px, (640, 480))
        x = 40 + 8 * i
        assert crop[0] <= x and crop[2] >= x + 40 and crop[1] <= 200 and crop[3] >= 260, (i, crop)
