"""Each Numba kernel agrees with its NumPy reference, on random and on real model output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.detection.box_ops import iou_matrix, iou_matrix_numpy, nms_class_aware, nms_class_aware_numpy
from agent.detection.decoding import (
    Candidates,
    decode_gfl,
    decode_gfl_numpy,
    decode_yolov8,
    decode_yolov8_numpy,
    decode_yolox,
    decode_yolox_numpy,
)
from agent.detection.manifest import ModelSpec
from agent.detection.model_store import resolve_model
from agent.detection.onnx_session import OnnxSession
from agent.detection.preprocess import Preprocessor, hwc_to_nchw_normalised, hwc_to_nchw_normalised_numpy


def random_boxes(rng: np.random.Generator, n: int, extent: float = 200.0) -> np.ndarray:
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(2, extent / 3, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def assert_same_candidates(a: Candidates, b: Candidates) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.class_id, b.class_id)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.box_xyxy_input, b.box_xyxy_input, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("colour_order", ["bgr", "rgb"])
def test_tensor_conversion_matches_numpy(colour_order: str) -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    fast, ref = np.full((1, 3, 64, 64), 7, np.float32), np.full((1, 3, 64, 64), 7, np.float32)
    hwc_to_nchw_normalised(src, fast, colour_order, mean, std)
    hwc_to_nchw_normalised_numpy(src, ref, colour_order, mean, std)
    np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-5)
    assert (fast[0, :, 37:, :] == 7).all(), "pixels outside the image region must be left alone"
    first = 2 if colour_order == "rgb" else 0
    assert fast[0, 0, 0, 0] == pytest.approx((src[0, 0, first] - mean[0]) / std[0], rel=1e-5)


def test_letterbox_keeps_aspect_and_pads_bottom_right() -> None:
    spec, _ = resolve_model("yolox-nano-416")
    pre = Preprocessor(spec, (416, 416))
    frame = np.full((576, 768, 3), 200, np.uint8)
    transform = pre.update(frame)
    assert transform.scale_x == transform.scale_y == pytest.approx(416 / 768)
    image_rows = int(576 * 416 / 768)
    assert (pre.tensor[0, :, :image_rows, :] == 200).all()
    assert (pre.tensor[0, :, image_rows:, :] == 114).all()
    back = transform.to_frame(np.array([[0, 0, 416, image_rows]], np.float32))
    np.testing.assert_allclose(back, [[0, 0, 768, 576]], atol=1.5)


@pytest.mark.parametrize("n,m", [(0, 5), (1, 1), (40, 60)])
def test_iou_matrix_matches_numpy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    a, b = random_boxes(rng, n), random_boxes(rng, m)
    np.testing.assert_allclose(iou_matrix(a, b), iou_matrix_numpy(a, b), atol=1e-6)


def test_iou_of_known_boxes() -> None:
    iou = iou_matrix(np.array([[0, 0, 10, 10]], np.float32), np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_nms_matches_numpy_on_random_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 400, extent=300)
    score = rng.uniform(0, 1, 400).astype(np.float32)
    cls = rng.integers(0, 3, 400).astype(np.int32)
    fast = nms_class_aware(boxes, score, cls, 0.45)
    np.testing.assert_array_equal(fast, nms_class_aware_numpy(boxes, score, cls, 0.45))
    kept = iou_matrix(boxes[fast], boxes[fast])
    same_class = cls[fast][:, None] == cls[fast][None, :]
    np.fill_diagonal(kept, 0)
    assert (kept[same_class] <= 0.45).all()


def test_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], np.float32)
    keep = nms_class_aware(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 0, 1], np.int32), 0.5)
    np.testing.assert_array_equal(keep, [0, 2])


def test_yolox_decode_matches_numpy_on_random_output() -> None:
    rng = np.random.default_rng(3)
    pred = rng.normal(0, 1, (1, 3549, 85)).astype(np.float32)
    pred[..., 4:] = rng.uniform(0, 1, (1, 3549, 81)) ** 3
    mask = np.zeros(80, np.bool_)
    mask[[0, 2, 7]] = True
    assert_same_candidates(
        decode_yolox(pred, (8, 16, 32), (416, 416), 0.1, mask),
        decode_yolox_numpy(pred, (8, 16, 32), (416, 416), 0.1, mask),
    )


def test_gfl_decode_matches_numpy_on_random_output() -> None:
    rng = np.random.default_rng(4)
    sizes = [1600, 400, 100, 25]
    cls = [(rng.uniform(0, 1, (1, n, 80)) ** 4).astype(np.float32) for n in sizes]
    dis = [rng.normal(0, 2, (1, n, 32)).astype(np.float32) for n in sizes]
    mask = np.ones(80, np.bool_)
    for shift in (0.0, -0.5):
        assert_same_candidates(
            decode_gfl(cls, dis, (8, 16, 32, 64), (320, 320), shift, 0.3, mask),
            decode_gfl_numpy(cls, dis, (8, 16, 32, 64), (320, 320), shift, 0.3, mask),
        )


def test_yolov8_decode_matches_numpy_on_random_output() -> None:
    rng = np.random.default_rng(5)
    pred = np.concatenate([rng.uniform(0, 400, (1, 4, 2100)), rng.uniform(0, 1, (1, 80, 2100)) ** 3], axis=1)
    mask = np.ones(80, np.bool_)
    assert_same_candidates(
        decode_yolov8(pred.astype(np.float32), 0.2, mask), decode_yolov8_numpy(pred.astype(np.float32), 0.2, mask)
    )


def _real_outputs(spec: ModelSpec, path: Path, image: np.ndarray) -> list[np.ndarray]:
    pre = Preprocessor(spec, spec.input_size_hw)
    pre.update(image)
    with OnnxSession(spec, path) as session:
        return session.run(pre.tensor)


@pytest.mark.parametrize("name", ["yolox-nano-416", "picodet-s-416", "nanodet-m-320", "person-light"])
def test_decoders_match_numpy_on_real_model_output(name: str, person_image: np.ndarray) -> None:
    spec, path = resolve_model(name)
    outputs = _real_outputs(spec, path, person_image)
    mask = np.ones(spec.num_classes, np.bool_)
    if spec.layout == "yolox":
        fast = decode_yolox(outputs[0], spec.strides, spec.input_size_hw, 0.05, mask)
        ref = decode_yolox_numpy(outputs[0], spec.strides, spec.input_size_hw, 0.05, mask)
    else:
        n = len(spec.strides)
        args = (outputs[:n], outputs[n:], spec.strides, spec.input_size_hw, spec.centre_shift_px, 0.05, mask)
        fast, ref = decode_gfl(*args), decode_gfl_numpy(*args)
    assert len(fast) > 0
    assert_same_candidates(fast, ref)
    np.testing.assert_array_equal(
        nms_class_aware(fast.box_xyxy_input, fast.score, fast.class_id, 0.45),
        nms_class_aware_numpy(ref.box_xyxy_input, ref.score, ref.class_id, 0.45),
    )
