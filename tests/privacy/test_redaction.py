"""Snapshot redaction on real faces, checked by an independent detector (Haar cascades)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config import FaceDetectorConfig, SnapshotPolicy
from agent.detection.box_ops import nms
from agent.errors import ModelError
from agent.privacy.faces import CenterFaceDetector
from agent.privacy.redaction import FILL_BGR, expand_boxes, fill_boxes
from agent.privacy.snapshots import SnapshotMaker
from agent.values.alert_moment import AlertMoment
from tests.privacy.redaction_check import check_faces, load_inputs, redact


@pytest.fixture(scope="module")
def face_detector() -> CenterFaceDetector:
    return CenterFaceDetector(FaceDetectorConfig(threads=2))


def test_no_independently_found_face_survives_redaction(
    face_detector: CenterFaceDetector,
    opencv_doc_dir: Path,
    assets_dir: Path,
    tmp_path: Path,
    haar_faces: Callable[[list[Path]], list[np.ndarray]],
) -> None:
    inputs = list(load_inputs(opencv_doc_dir, assets_dir, video_step=15))
    paths = []
    for i, (_, image) in enumerate(inputs):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), image)
    maker = SnapshotMaker(lambda: face_detector)
    checks = []
    for (name, image), faces in zip(inputs, haar_faces(paths), strict=True):
        snap, redacted = redact(maker, image)
        assert snap.redaction == "faces-filled" and redacted.shape == image.shape
        checks += check_faces(name, image, redacted, faces)
    assert len(checks) >= 15, "the inputs hold enough independently found faces to mean something"
    leaks = [c for c in checks if c.kept_fraction > 0.05]
    assert not leaks, f"faces left visible: {leaks}"


def test_fill_is_solid_with_margin_and_leaves_the_input_alone() -> None:
    image = np.random.default_rng(1).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    before = image.copy()
    boxes = expand_boxes(np.array([[40.0, 30.0, 60.0, 50.0]]), 0.25, (120, 100))
    assert boxes.tolist() == [[35, 25, 65, 55]]
    out = fill_boxes(image, boxes)
    assert np.array_equal(image, before)
    assert (out[25:55, 35:65] == FILL_BGR).all()
    assert np.array_equal(out[:25], image[:25]) and np.array_equal(out[55:], image[55:])
    assert expand_boxes(np.array([[0.0, 0.0, 10.0, 10.0]]), 0.5, (8, 8)).tolist() == [[0, 0, 8, 8]]


def test_person_boxes_are_filled_when_asked(face_detector: CenterFaceDetector, assets_dir: Path) -> None:
    image = cv2.imread(str(assets_dir / "images" / "darknet_person.jpg"))
    person = np.array([[190.0, 95.0, 275.0, 380.0]], np.float32)
    policy = SnapshotPolicy(enabled=True, framing="frame", max_side_px=4096, jpeg_quality=90, fill_person_boxes=True)
    snap = SnapshotMaker(lambda: face_detector).make_all(AlertMoment(image, person, person), [policy])[policy]
    decoded = cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = expand_boxes(person, 0.05, (image.shape[1], image.shape[0]))[0]
    inner = decoded[y1 + 8 : y2 - 8, x1 + 8 : x2 - 8].astype(int)  # JPEG rings near the edges
    assert snap.persons_filled == 1 and np.abs(inner - np.array(FILL_BGR)).max() <= 12


def test_crop_framing_and_scaling(face_detector: CenterFaceDetector, opencv_doc_dir: Path) -> None:
    image = cv2.imread(str(opencv_doc_dir / "messi5.jpg"))
    player = np.array([[200.0, 80.0, 300.0, 300.0]], np.float32)
    policy = SnapshotPolicy(enabled=True, framing="objects", max_side_px=128)
    snap = SnapshotMaker(lambda: face_detector).make_all(AlertMoment(image, player, player), [policy])[policy]
    assert snap.redaction == "faces-filled" and snap.faces_filled >= 1
    assert max(snap.width_px, snap.height_px) == 128 and snap.height_px > snap.width_px
    assert cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (
        snap.height_px,
        snap.width_px,
    )


def test_face_candidates_are_merged_by_the_shared_nms() -> None:
    # The face detector's NMS (one class, IoU 0.3): a near copy of a better candidate goes,
    # a face overlapping it exactly at the threshold stays, the rest keep score order.
    boxes = np.array([[0, 0, 5, 1], [2, 0, 10, 1], [0, 0, 5, 1.05], [20, 0, 30, 1]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [3, 0, 1]
    assert nms(boxes, scores, 0.3, max_keep=2).tolist() == [3, 0]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3).tolist() == []


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="face detector model"):
        CenterFaceDetector(FaceDetectorConfig(model_path=tmp_path / "nope.onnx"))
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError):
        CenterFaceDetector(FaceDetectorConfig(model_path=tmp_path / "bad.onnx"))


def test_a_failing_detector_withholds_the_snapshot() -> None:
    class Broken:
        def detect(self, image_bgr: np.ndarray) -> object:
            raise RuntimeError("onnxruntime fell over")

    image = np.full((50, 50, 3), 77, np.uint8)
    empty = np.zeros((0, 4), np.float32)
    policy = SnapshotPolicy(enabled=True)
    snap = SnapshotMaker(Broken).make_all(AlertMoment(image, empty, empty), [policy])[policy]
    assert snap.redaction == "withheld" and snap.jpeg == b"" and snap.to_json() == {"withheld": "face detection failed"}
