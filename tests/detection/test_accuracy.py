"""Person AP50 of the detectors on the real clips with MOT ground truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from agent.detection import DetectorOptions, ObjectDetector
from agent.evaluation.detection_ap import APResult, DetectionAPAccumulator, load_mot_boxes

# A low threshold traces the whole PR curve; AP is about ranking, not the operating point.
AP_OPTIONS = DetectorOptions(score_threshold=0.05, classes=("person",))


def person_ap50(model: str, video: Path, gt_path: Path, every: int, options: DetectorOptions = AP_OPTIONS) -> APResult:
    """AP50 over every `every`-th frame (gt frame N = decoded frame N, 1-based)."""
    gt, ignored = load_mot_boxes(gt_path), load_mot_boxes(gt_path, ignored=True)
    acc = DetectionAPAccumulator(iou_threshold=0.5)
    cap = cv2.VideoCapture(str(video))
    number = 0
    with ObjectDetector.from_model(model, options) as detector:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            number += 1
            if (number - 1) % every:
                continue
            dets = detector.detect(image)
            acc.add_frame(dets.box_xyxy_px, dets.score, gt.get(number, []), ignored.get(number))
    cap.release()
    return acc.result()


def pets(assets_dir: Path) -> tuple[Path, Path]:
    return assets_dir / "videos" / "vtest.avi", assets_dir / "videos" / "PETS09-S2L1" / "gt" / "gt.txt"


def tud(assets_dir: Path) -> tuple[Path, Path]:
    base = assets_dir / "videos" / "TUD-Stadtmitte"
    return base / "TUD-Stadtmitte.mp4", base / "gt" / "gt.txt"


def test_yolox_nano_416_person_ap50_on_pets_subset(assets_dir: Path) -> None:
    result = person_ap50("yolox-nano-416", *pets(assets_dir), every=5)
    assert result.num_gt > 800
    assert result.ap >= 0.88, result


def test_yolox_nano_416_person_ap50_on_tud_subset(assets_dir: Path) -> None:
    result = person_ap50("yolox-nano-416", *tud(assets_dir), every=3)
    assert result.ap >= 0.82, result


def test_higher_score_threshold_cuts_recall(assets_dir: Path) -> None:
    strict = DetectorOptions(score_threshold=0.6, classes=("person",))
    loose, tight = (person_ap50("yolox-nano-416", *pets(assets_dir), every=25, options=o) for o in (AP_OPTIONS, strict))
    assert tight.max_recall < loose.max_recall


@pytest.mark.slow
def test_yolox_nano_416_person_ap50_on_whole_pets_clip(assets_dir: Path) -> None:
    assert person_ap50("yolox-nano-416", *pets(assets_dir), every=1).ap >= 0.88


@pytest.mark.slow
@pytest.mark.parametrize("model,minimum", [("picodet-s-416", 0.88), ("nanodet-m-320", 0.82), ("yolox-nano", 0.88)])
def test_other_models_person_ap50_on_whole_pets_clip(assets_dir: Path, model: str, minimum: float) -> None:
    assert person_ap50(model, *pets(assets_dir), every=1).ap >= minimum
