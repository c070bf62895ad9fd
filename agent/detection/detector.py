"""`ObjectDetector`: BGR frame in, `Detections` in frame pixels out.

Owns the per-detector state: the checked ONNX session, the preallocated
input tensor and candidate buffers, the options fixed at construction, and
the stage timings of the last call. Construction compiles the Numba kernels
and runs a warm-up frame so the first real frame is not slow.

`detect_crops` looks at crops of a frame instead (`regions` motion mode):
each crop is letterboxed to the input size and run on its own, because every
shipped model declares a batch of exactly 1 (`[1, 3, H, W]`), so the crops
cannot share one call. A box that touches a side of its crop lying inside
the frame is dropped: the object runs on past that side and the box holds
only a piece of it. The rest, moved back to frame pixels, go through the one
NMS (`agent.detection.box_ops`) together, which also merges the duplicates
of an object seen in two overlapping crops.
"""

from __future__ import annotations

__all__ = ["DetectorOptions", "ObjectDetector", "StageTimings"]

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from agent.detection.adapters import make_adapter
from agent.detection.box_ops import nms_class_aware
from agent.detection.manifest import ModelSpec
from agent.detection.model_store import resolve_model
from agent.detection.onnx_session import OnnxSession
from agent.detection.preprocess import Preprocessor
from agent.errors import ModelError, SourceError
from agent.values.detections import Detections


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """How a detector runs, fixed at construction.

    Attributes:
        input_size_hw: model input size; None uses the manifest's native size.
            Dynamic models accept other sizes that are multiples of the largest stride.
        score_threshold: lowest score kept (0-1).
        nms_iou_threshold: same-class boxes overlapping more than this are merged (0-1).
        classes: class names to report; None reports every class.
        max_detections: most boxes reported per frame, best first.
        intra_op_threads: ONNX Runtime threads inside one operator.
        inter_op_threads: ONNX Runtime threads across operators.
        providers: execution providers in preference order; unavailable ones are skipped.
    """

    input_size_hw: tuple[int, int] | None = None
    score_threshold: float = 0.3
    nms_iou_threshold: float = 0.45
    classes: tuple[str, ...] | None = None
    max_detections: int = 300
    intra_op_threads: int = 2
    inter_op_threads: int = 1
    providers: tuple[str, ...] = ("CPUExecutionProvider",)


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Wall time of each stage of one `detect` call, in milliseconds."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


def _class_mask(spec: ModelSpec, classes: Sequence[str] | None) -> np.ndarray:
    if classes is None:
        return np.ones(spec.num_classes, np.bool_)
    unknown = [c for c in classes if c not in spec.class_names]
    if unknown:
        raise ModelError(f"model {spec.name!r} has no class {unknown}; it detects: {', '.join(spec.class_names)}")
    return np.array([name in classes for name in spec.class_names], np.bool_)


def _input_size(spec: ModelSpec, requested: tuple[int, int] | None) -> tuple[int, int]:
    size = requested or spec.input_size_hw
    step = max(spec.strides)
    if spec.dynamic_input and spec.layout == "yolox" and (size[0] % 32 or size[1] % 32):
        raise ModelError(f"model {spec.name!r}: input size {size} must be a multiple of 32")
    if min(size) < step:
        raise ModelError(f"model {spec.name!r}: input size {size} is smaller than its largest stride {step}")
    return size


# A box this close (crop pixels) to a side of its crop that is inside the frame is cut by it.
_CUT_MARGIN_PX = 2.0


def _not_cut(
    box_crop: np.ndarray, crop_wh: tuple[int, int], crop_xyxy: tuple[int, int, int, int], frame_wh: tuple[int, int]
) -> np.ndarray:
    """Rows of boxes (crop pixels) not touching a crop side that lies inside the frame: an object
    running past such a side is only partly in the crop, and its box there is a piece of it."""
    cw, ch = crop_wh
    x1, y1, x2, y2 = crop_xyxy
    fw, fh = frame_wh
    m = _CUT_MARGIN_PX
    keep = np.ones(len(box_crop), np.bool_)
    if x1 > 0:
        keep &= box_crop[:, 0] > m
    if y1 > 0:
        keep &= box_crop[:, 1] > m
    if x2 < fw:
        keep &= box_crop[:, 2] < cw - m
    if y2 < fh:
        keep &= box_crop[:, 3] < ch - m
    return keep


def _check_options(options: DetectorOptions) -> None:
    if not 0.0 < options.score_threshold <= 1.0:
        raise ModelError(f"score_threshold must be in (0, 1], got {options.score_threshold}")
    if not 0.0 < options.nms_iou_threshold <= 1.0:
        raise ModelError(f"nms_iou_threshold must be in (0, 1], got {options.nms_iou_threshold}")
    if options.max_detections < 1 or options.intra_op_threads < 1 or options.inter_op_threads < 1:
        raise ModelError("max_detections and thread counts must be at least 1")


class ObjectDetector:
    """Runs one ONNX detector on BGR frames; one instance per camera thread.

    Raises (from the constructor):
        ModelError: bad options, unknown class names, or a model that does not
            load or does not match its manifest entry.
    """

    def __init__(self, spec: ModelSpec, path: Path, options: DetectorOptions = DetectorOptions()) -> None:
        _check_options(options)
        self.spec = spec
        self.options = options
        self.input_size_hw = _input_size(spec, options.input_size_hw)
        self._mask = _class_mask(spec, options.classes)
        self._session = OnnxSession(
            spec,
            path,
            input_size_hw=self.input_size_hw,
            intra_op_threads=options.intra_op_threads,
            inter_op_threads=options.inter_op_threads,
            providers=options.providers,
        )
        self._pre = Preprocessor(spec, self.input_size_hw)
        # Crops have their own sizes: their own buffers keep the whole frame's prepared between frames.
        self._crop_pre = Preprocessor(spec, self.input_size_hw)
        self._adapter = make_adapter(spec, self.input_size_hw, options.score_threshold, self._mask)
        self.last_timings = StageTimings(0.0, 0.0, 0.0)
        self._warm_up()

    @classmethod
    def from_model(
        cls, name_or_path: str, options: DetectorOptions = DetectorOptions(), *, layout: str | None = None
    ) -> ObjectDetector:
        """Resolve a manifest name or file path (see `resolve_model`) and load it."""
        spec, path = resolve_model(name_or_path, layout=layout)
        return cls(spec, path, options)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def _warm_up(self) -> None:
        # A textured frame so every kernel (resize, convert, decode, NMS) compiles and runs once.
        h, w = self.input_size_hw
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (h + 37, w + 61, 3), dtype=np.uint8)
        self.detect(frame)
        # A random frame rarely yields candidates, so run NMS on two boxes to compile it too.
        boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11]], np.float32)
        nms_class_aware(boxes, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int32), 0.5)
        self.last_timings = StageTimings(0.0, 0.0, 0.0)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """Detect objects of the classes of interest in a (H, W, 3) uint8 BGR frame.

        Returns boxes in frame pixels, clipped to the frame, best score first.

        Raises:
            SourceError: the image is not (H, W, 3) uint8.
        """
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise SourceError(f"detector needs a (H, W, 3) uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}")
        t0 = time.perf_counter()
        transform = self._pre.update(image_bgr)
        t1 = time.perf_counter()
        outputs = self._session.run(self._pre.tensor)
        t2 = time.perf_counter()
        cand = self._adapter.decode(outputs)
        keep = nms_class_aware(
            cand.box_xyxy_input, cand.score, cand.class_id, self.options.nms_iou_threshold, self.options.max_detections
        )
        dets = Detections(transform.to_frame(cand.box_xyxy_input[keep]), cand.score[keep], cand.class_id[keep])
        t3 = time.perf_counter()
        self.last_timings = StageTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return dets

    def detect_crops(self, image_bgr: np.ndarray, crops_xyxy_px: np.ndarray) -> Detections:
        """Detect on each crop (int (k, 4) `x1, y1, x2, y2` inside the frame) of a BGR frame.

        Returns boxes in frame pixels, clipped to the frame, best score first;
        `last_timings` adds up the crops' stages.

        Raises:
            SourceError: the image is not (H, W, 3) uint8.
        """
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise SourceError(f"detector needs a (H, W, 3) uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}")
        boxes, scores, classes = [], [], []
        pre_s = infer_s = post_s = 0.0
        h, w = image_bgr.shape[:2]
        for x1, y1, x2, y2 in np.asarray(crops_xyxy_px, np.int64).reshape(-1, 4):
            t0 = time.perf_counter()
            transform = self._crop_pre.update(image_bgr[y1:y2, x1:x2])
            t1 = time.perf_counter()
            outputs = self._session.run(self._crop_pre.tensor)
            t2 = time.perf_counter()
            cand = self._adapter.decode(outputs)
            # The candidates are views of the adapter's buffers: the next crop overwrites them.
            box = transform.to_frame(cand.box_xyxy_input)
            whole = _not_cut(box, (x2 - x1, y2 - y1), (x1, y1, x2, y2), (w, h))
            box = box[whole] + np.array([x1, y1, x1, y1], np.float32)
            boxes.append(box)
            scores.append(cand.score[whole])
            classes.append(cand.class_id[whole])
            pre_s += t1 - t0
            infer_s += t2 - t1
            post_s += time.perf_counter() - t2
        t3 = time.perf_counter()
        if not boxes:
            self.last_timings = StageTimings(0.0, 0.0, 0.0)
            return Detections.empty()
        box_all, score_all, class_all = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
        keep = nms_class_aware(
            box_all, score_all, class_all, self.options.nms_iou_threshold, self.options.max_detections
        )
        kept = np.clip(box_all[keep], 0.0, np.array([w, h, w, h], np.float32))
        dets = Detections(kept, score_all[keep], class_all[keep])
        post_s += time.perf_counter() - t3
        self.last_timings = StageTimings(pre_s * 1e3, infer_s * 1e3, post_s * 1e3)
        return dets

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ObjectDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
