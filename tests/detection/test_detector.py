"""ObjectDetector on real models and real frames, and the refusals a user would hit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.detection import DetectorOptions, ObjectDetector, StageTimings
from agent.detection.box_ops import iou_matrix
from agent.detection.manifest import load_manifest
from agent.detection.model_store import resolve_model
from agent.detection.onnx_session import OnnxSession
from agent.errors import ModelError, SourceError

# The standing person in darknet_person.jpg (640x424), checked by eye against the image.
PERSON_BOX_XYXY = np.array([[188, 98, 275, 372]], np.float32)
ALL_MODELS = ["yolox-nano-416", "yolox-nano", "picodet-s-416", "picodet-s-320", "nanodet-m-320", "person-light"]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_each_model_finds_the_person(name: str, person_image: np.ndarray) -> None:
    opts = DetectorOptions(
        score_threshold=0.4, classes=("person",), input_size_hw=(320, 320) if name == "person-light" else None
    )
    with ObjectDetector.from_model(name, opts) as detector:
        dets = detector.detect(person_image)
        timings = detector.last_timings
    assert len(dets) == 1, f"{name} found {len(dets)} people, expected 1"
    assert iou_matrix(dets.box_xyxy_px, PERSON_BOX_XYXY)[0, 0] > 0.85
    assert isinstance(timings, StageTimings) and timings.inference_ms > 0


@pytest.mark.parametrize("name", ["yolox-nano-416", "picodet-s-320"])
def test_all_classes_reports_the_animals_too(name: str, person_image: np.ndarray) -> None:
    with ObjectDetector.from_model(name, DetectorOptions(score_threshold=0.5)) as detector:
        found = {detector.class_names[c] for c in detector.detect(person_image).class_id}
    assert {"person", "dog"} <= found
    assert found & {"horse", "sheep", "cow"}


@pytest.mark.parametrize("name", ["yolox-nano-416", "picodet-s-416", "nanodet-m-320"])
def test_people_found_on_vtest_frames(name: str, vtest_frames: dict[int, np.ndarray], assets_dir: Path) -> None:
    from agent.evaluation.detection_ap import load_mot_boxes

    gt = load_mot_boxes(assets_dir / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")
    with ObjectDetector.from_model(name, DetectorOptions(score_threshold=0.35, classes=("person",))) as det:
        for number, image in vtest_frames.items():
            dets = det.detect(image)
            h, w = image.shape[:2]
            assert (dets.box_xyxy_px >= 0).all() and (dets.box_xyxy_px[:, [0, 2]] <= w).all()
            assert (dets.box_xyxy_px[:, [1, 3]] <= h).all()
            matched = (iou_matrix(gt[number], dets.box_xyxy_px).max(axis=1, initial=0) >= 0.5).mean()
            assert matched >= 0.6, f"{name} frame {number}: only {matched:.0%} of the people found"


def test_dynamic_model_sizes_agree(person_image: np.ndarray) -> None:
    for side in (320, 416, 640):
        with ObjectDetector.from_model(
            "yolox-nano", DetectorOptions(input_size_hw=(side, side), classes=("person",))
        ) as d:
            dets = d.detect(person_image)
        assert len(dets) == 1 and iou_matrix(dets.box_xyxy_px, PERSON_BOX_XYXY)[0, 0] > 0.85, side


def test_user_yolov8_export_matches_yolox(yolov8_layout_model: Path, person_image: np.ndarray) -> None:
    with ObjectDetector.from_model(str(yolov8_layout_model), layout="yolov8") as v8:
        assert v8.spec.layout == "yolov8" and v8.spec.colour_order == "rgb"
        got = v8.detect(person_image)
    with ObjectDetector.from_model("yolox-nano-416") as yolox:
        want = yolox.detect(person_image)
    np.testing.assert_array_equal(got.class_id, want.class_id)
    np.testing.assert_allclose(got.box_xyxy_px, want.box_xyxy_px, atol=0.05)


def test_truncated_model_is_refused(models_dir: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "yolox_nano_416.onnx"
    damaged.write_bytes((models_dir / "yolox_nano_416.onnx").read_bytes()[:500_000])
    spec = load_manifest()["yolox-nano-416"]
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxSession(spec, damaged)
    with pytest.raises(ModelError, match="sha256"):
        resolve_model(str(damaged))


def test_text_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_text("not a model\n")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxSession(load_manifest()["yolox-nano-416"], bogus)


@pytest.mark.parametrize(
    "spec_name,file_name",
    [
        ("yolox-nano-416", "picodet_s_416_coco_clean.onnx"),
        ("picodet-s-320", "picodet_s_416_coco_clean.onnx"),
        ("nanodet-m-320", "yolox_nano_416.onnx"),
    ],
)
def test_model_with_another_entrys_outputs_is_refused(spec_name: str, file_name: str, models_dir: Path) -> None:
    spec = load_manifest()[spec_name]
    with pytest.raises(ModelError, match=rf"model '{spec_name}'.*expected"):
        OnnxSession(spec, models_dir / file_name)


def test_wrong_class_count_in_dynamic_model_is_refused(models_dir: Path) -> None:
    # person-light has the yolox-nano graph shape [1, N, .] but 6 channels, not 85.
    with pytest.raises(ModelError, match=r"1, \?, 85"):
        OnnxSession(load_manifest()["yolox-nano"], models_dir / "light_person_detector_dynamic_hw.onnx")


@pytest.mark.parametrize(
    "options,match",
    [
        (DetectorOptions(classes=("unicorn",)), "no class"),
        (DetectorOptions(input_size_hw=(320, 320)), "fixed input"),
        (DetectorOptions(score_threshold=0.0), "score_threshold"),
        (DetectorOptions(providers=("NoSuchExecutionProvider",)), "execution providers"),
    ],
)
def test_bad_options_are_refused(options: DetectorOptions, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        ObjectDetector.from_model("yolox-nano-416", options)


def test_dynamic_size_must_be_multiple_of_32() -> None:
    with pytest.raises(ModelError, match="multiple of 32"):
        ObjectDetector.from_model("yolox-nano", DetectorOptions(input_size_hw=(300, 300)))


def test_non_image_input_is_refused() -> None:
    with ObjectDetector.from_model("person-light") as detector:
        with pytest.raises(SourceError, match="uint8"):
            detector.detect(np.zeros((10, 10), np.float32))
        assert len(detector.detect(np.zeros((240, 320, 3), np.uint8))) == 0


def test_detector_does_not_change_the_callers_frame(person_image: np.ndarray) -> None:
    frame = person_image.copy()
    with ObjectDetector.from_model("picodet-s-320") as detector:
        first = detector.detect(frame)
        second = detector.detect(frame)
    np.testing.assert_array_equal(frame, person_image)
    np.testing.assert_array_equal(first.box_xyxy_px, second.box_xyxy_px)
