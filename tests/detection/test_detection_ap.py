"""The AP50 evaluation itself, on hand-made cases with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.evaluation.detection_ap import DetectionAPAccumulator, average_precision, load_mot_boxes

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)


def test_perfect_predictions_score_one() -> None:
    acc = DetectionAPAccumulator()
    acc.add_frame(GT, np.array([0.9, 0.8]), GT)
    result = acc.result()
    assert result.ap == pytest.approx(1.0) and result.max_recall == 1.0 and result.num_gt == 2


def test_no_predictions_score_zero() -> None:
    acc = DetectionAPAccumulator()
    acc.add_frame(np.zeros((0, 4)), np.zeros(0), GT)
    assert acc.result().ap == 0.0


def test_duplicate_is_a_false_positive_and_ranking_matters() -> None:
    acc = DetectionAPAccumulator()
    # Ranked: hit (0.9), duplicate of the same box (0.8), hit on the second box (0.7).
    acc.add_frame(
        np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], np.float32), np.array([0.9, 0.8, 0.7]), GT
    )
    # PR points: (0.5, 1), (0.5, 0.5), (1.0, 0.667); envelope gives 0.5*1 + 0.5*0.667.
    assert acc.result().ap == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_iou_below_half_is_a_miss() -> None:
    acc = DetectionAPAccumulator()
    acc.add_frame(np.array([[6, 0, 16, 10]], np.float32), np.array([0.9]), GT[:1])
    assert acc.result().ap == 0.0


def test_predictions_on_ignore_regions_count_neither_way() -> None:
    acc = DetectionAPAccumulator()
    acc.add_frame(
        np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32),
        np.array([0.5, 0.9]),
        GT[:1],
        ignore_xyxy=np.array([[50, 50, 60, 61]], np.float32),
    )
    result = acc.result()
    assert result.ap == pytest.approx(1.0) and result.num_pred == 1


def test_average_precision_of_interleaved_hits() -> None:
    tp = np.array([True, False, True, False])
    score = np.array([0.4, 0.9, 0.3, 0.1])  # ranked: F, T, T, F
    # PR points: (0,0), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2); envelope: 2/3 over both steps.
    assert average_precision(tp, score, num_gt=3) == pytest.approx(2 / 3 * 2 / 3)


def test_load_mot_boxes_splits_ignore_rows(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,20,30,40,1,-1,-1,-1\n1,2,0,0,5,5,0,-1,-1,-1\n3,1,1,2,3,4,1,-1,-1,-1\n")
    boxes, ignored = load_mot_boxes(gt), load_mot_boxes(gt, ignored=True)
    np.testing.assert_array_equal(boxes[1], [[10, 20, 40, 60]])
    assert sorted(boxes) == [1, 3] and sorted(ignored) == [1]
