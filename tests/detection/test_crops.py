"""Detection on motion crops: where the crops go, and that crop boxes land where whole-frame boxes do.

Real parts: YOLOX-Nano at 416 on frames of vtest.avi (768x576), where a
416-pixel crop holds a few walkers at full resolution.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.detection import DetectorOptions, ObjectDetector
from agent.detection.box_ops import iou_matrix
from agent.detection.crops import CropPlanner, CropSettings
from tests.detection.conftest import read_frames

FRAME_WH = (768, 576)


def _planner(**fields: float) -> CropPlanner:
    return CropPlanner(CropSettings(min_side_px=416, **fields))  # type: ignore[arg-type]


def _inside(inner: np.ndarray, outer: np.ndarray) -> bool:
    return bool((inner[:2] >= outer[:2]).all() and (inner[2:] <= outer[2:]).all())


def test_a_small_motion_gets_one_square_crop_of_the_input_side_around_it() -> None:
    motion = np.array([[100, 200, 140, 300]], np.float32)
    [crop] = _planner().plan(motion, FRAME_WH)
    assert crop[2] - crop[0] == crop[3] - crop[1] == 416
    assert _inside(motion[0], crop.astype(np.float32))


def test_a_crop_near_the_edge_is_shifted_into_the_frame() -> None:
    [crop] = _planner().plan(np.array([[740, 540, 768, 576]], np.float32), FRAME_WH)
    assert tuple(crop) == (768 - 416, 576 - 416, 768, 576)


def test_nearby_motions_share_one_crop_and_far_ones_get_their_own() -> None:
    near = np.array([[100, 100, 140, 200], [180, 120, 220, 220]], np.float32)
    assert len(_planner().plan(near, (2000, 1500))) == 1
    far = np.array([[100, 100, 140, 200], [1500, 1000, 1540, 1100]], np.float32)
    crops = _planner().plan(far, (2000, 1500))
    assert crops is not None and len(crops) == 2
    assert all(any(_inside(m, c.astype(np.float32)) for c in crops) for m in far)


def test_a_motion_larger_than_the_input_keeps_its_size() -> None:
    motion = np.array([[600, 100, 1200, 500]], np.float32)
    [crop] = _planner(pad_px=0).plan(motion, (2000, 1500))
    assert crop[2] - crop[0] == crop[3] - crop[1] == 600 and _inside(motion[0], crop.astype(np.float32))


@pytest.mark.parametrize(
    ("motion", "settings"),
    [
        ([[0, 0, 768, 576]], {}),  # the motion gate's warm-up: the whole frame moves
        ([[0, 0, 500, 400]], {}),  # more than 40 % of the frame
        ([[50, 50, 60, 60], [900, 50, 910, 60], [50, 900, 60, 910], [900, 900, 910, 910]], {"max_count": 3}),
        ([[0, 0, 10, 10], [700, 500, 768, 576]], {}),  # two 416 crops hold more pixels than the frame
        ([], {}),
    ],
)
def test_the_whole_frame_is_chosen_when_crops_would_not_pay(motion: list[list[float]], settings: dict) -> None:
    size = (1000, 1000) if len(motion) == 4 else FRAME_WH
    assert _planner(**settings).plan(np.array(motion, np.float32), size) is None


@pytest.fixture(scope="module")
def detector() -> Iterator[ObjectDetector]:
    opts = DetectorOptions(classes=("person",), score_threshold=0.3)
    with ObjectDetector.from_model("yolox-nano-416", opts) as det:
        yield det


def test_boxes_found_in_crops_land_where_the_whole_frame_detector_puts_them(
    detector: ObjectDetector, vtest_avi: Path
) -> None:
    matched = total = 0
    for _, image in read_frames(vtest_avi, {20, 120, 220, 320}):
        whole = detector.detect(image)
        # Two overlapping 416-pixel crops that cover the walkway between them, seen at full resolution.
        crops = np.array([[0, 0, 416, 416], [352, 160, 768, 576]], np.int32)
        cropped = detector.detect_crops(image, crops)
        # Compare the people well inside a crop; one cut by a crop's edge is only partly in it.
        inner = [
            i
            for i, b in enumerate(whole.box_xyxy_px)
            if any(_inside(b, c.astype(np.float32) + np.array([8, 8, -8, -8])) for c in crops)
        ]
        if not inner or not len(cropped):
            continue
        iou = iou_matrix(whole.box_xyxy_px[inner], cropped.box_xyxy_px)
        matched += int((iou.max(axis=1) > 0.5).sum())
        total += len(inner)
    assert total >= 10
    assert matched >= 0.8 * total, f"{matched} of {total} people found at the same place"


def test_an_object_in_two_overlapping_crops_is_reported_once(detector: ObjectDetector, vtest_avi: Path) -> None:
    [(_, image)] = list(read_frames(vtest_avi, {120}))
    crops = np.array([[100, 100, 516, 516], [180, 120, 596, 536]], np.int32)
    once = detector.detect_crops(image, crops[:1])
    twice = detector.detect_crops(image, crops)
    assert len(once) >= 2
    iou = iou_matrix(twice.box_xyxy_px, twice.box_xyxy_px)
    np.fill_diagonal(iou, 0.0)
    assert iou.max() <= detector.options.nms_iou_threshold, "duplicates across crops are merged by the one NMS"
    # Every crop box is in frame pixels: those of the first crop lie inside it.
    assert (once.box_xyxy_px[:, :2] >= 100).all() and (once.box_xyxy_px[:, 2:] <= 516).all()


def test_no_crops_detect_nothing(detector: ObjectDetector, vtest_avi: Path) -> None:
    [(_, image)] = list(read_frames(vtest_avi, {20}))
    assert len(detector.detect_crops(image, np.zeros((0, 4), np.int32))) == 0
