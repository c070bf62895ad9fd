"""Detection fixtures: the model path pointed at the shared assets, and real frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from agent.detection.manifest import load_manifest


@pytest.fixture(autouse=True)
def _model_path(monkeypatch: pytest.MonkeyPatch, models_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGE_AGENT_MODEL_PATH", str(models_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def person_image(assets_dir: Path) -> np.ndarray:
    image = cv2.imread(str(assets_dir / "images" / "darknet_person.jpg"))
    if image is None:
        pytest.fail("darknet_person.jpg could not be read")
    return image


def read_frames(video: Path, indices: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (1-based frame number, BGR image) for the wanted frame numbers."""
    cap = cv2.VideoCapture(str(video))
    number = 0
    try:
        while number < max(indices):
            ok, image = cap.read()
            if not ok:
                break
            number += 1
            if number in indices:
                yield number, image
    finally:
        cap.release()


@pytest.fixture(scope="session")
def vtest_frames(vtest_avi: Path) -> dict[int, np.ndarray]:
    return dict(read_frames(vtest_avi, {1, 200, 400, 600}))


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _slice(src: str, dst: str, start: int, end: int) -> list[onnx.NodeProto]:
    arrays = {f"{dst}_s": [start], f"{dst}_e": [end], f"{dst}_a": [2]}
    nodes = [_const(k, np.array(v, np.int64)) for k, v in arrays.items()]
    return [*nodes, helper.make_node("Slice", [src, f"{dst}_s", f"{dst}_e", f"{dst}_a"], [dst])]


def build_yolov8_layout_model(yolox_path: Path, out_path: Path) -> Path:
    """Wrap YOLOX-Nano 416 into a YOLOv8-style export: RGB 0-1 in, [1, 84, N] pixel boxes out.

    The graph gets the YOLOX grid decode and the obj*cls product appended and
    a channel swap and x255 prepended, so it is a real detector that follows
    the YOLOv8 conventions (and must find what YOLOX finds).
    """
    spec = load_manifest()["yolox-nano-416"]
    model = onnx.load(str(yolox_path))
    g = model.graph
    for node in g.node:
        node.input[:] = ["images_bgr" if i == "images" else i for i in node.input]
    grid, stride = [], []
    for s in spec.strides:
        gy, gx = np.meshgrid(np.arange(416 // s), np.arange(416 // s), indexing="ij")
        grid.append(np.stack([gx.ravel(), gy.ravel()], 1))
        stride.append(np.full((gx.size, 1), s))
    pre = [
        _const("k255", np.array(255.0, np.float32)),
        _const("rgb2bgr", np.array([2, 1, 0], np.int64)),
        helper.make_node("Mul", ["images", "k255"], ["images_255"]),
        helper.make_node("Gather", ["images_255", "rgb2bgr"], ["images_bgr"], axis=1),
    ]
    post = [
        _const("grid", np.concatenate(grid)[None].astype(np.float32)),
        _const("stride", np.concatenate(stride)[None].astype(np.float32)),
    ]
    post += _slice("output", "p_xy", 0, 2) + _slice("output", "p_wh", 2, 4)
    post += _slice("output", "p_obj", 4, 5) + _slice("output", "p_cls", 5, 85)
    post += [
        helper.make_node("Add", ["p_xy", "grid"], ["xy_g"]),
        helper.make_node("Mul", ["xy_g", "stride"], ["xy"]),
        helper.make_node("Exp", ["p_wh"], ["wh_e"]),
        helper.make_node("Mul", ["wh_e", "stride"], ["wh"]),
        helper.make_node("Mul", ["p_cls", "p_obj"], ["cls"]),
        helper.make_node("Concat", ["xy", "wh", "cls"], ["dec"], axis=2),
        helper.make_node("Transpose", ["dec"], ["output0"], perm=[0, 2, 1]),
    ]
    nodes = pre + list(g.node) + post
    del g.node[:]
    g.node.extend(nodes)
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 84, 3549])])
    onnx.save(model, str(out_path))
    return out_path


@pytest.fixture(scope="session")
def yolov8_layout_model(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("user-model") / "my_export_v8.onnx"
    return build_yolov8_layout_model(models_dir / "yolox_nano_416.onnx", out)
