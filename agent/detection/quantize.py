"""INT8 copies of manifest models: static QDQ quantization calibrated on a site clip.

Owns `quantize_model` (manifest entry + clip -> an INT8 QDQ file registered in
the user cache as a derived model, see `agent.detection.model_store`), the
calibration reader that feeds it and `box_agreement`, the check of the copy
against its float model. Calibration frames are decoded with the agent's own
file source and turned into input tensors by the detector's own
`Preprocessor`, so the quantization ranges are those of real inference.

ONNX Runtime's `quantize_static` does the work: QDQ format, per-channel
signed 8-bit weights, unsigned 8-bit activations (U8S8, the fast integer path
of ONNX Runtime's CPU kernels; signed activations run slower than float
there), MinMax calibration with ranges averaged over the frames. Per-channel
QDQ needs opset 13, so an older graph is converted first, then ONNX Runtime's
quantization pre-processing (shape inference and graph optimisation) runs on
it. The tail of the graph after the last convolutions (sigmoids, reshapes,
concatenation of box, objectness and class outputs) stays in float: one int8
scale shared by pixel offsets and 0-1 scores would wreck the scores.
"""

from __future__ import annotations

__all__ = ["QuantizeResult", "box_agreement", "calibration_frames", "float_tail_nodes", "quantize_model"]

import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import version_converter

from agent.detection.manifest import ModelSpec, load_manifest
from agent.detection.model_store import (
    cache_dir,
    derived_index_path,
    file_sha256,
    read_derived_index,
    resolve_model,
)
from agent.detection.onnx_session import check_output_contract
from agent.detection.preprocess import Preprocessor
from agent.errors import ModelError, SourceError
from agent.sources.file_replay import FileReplay

# Per-channel QDQ (the axis attribute of QuantizeLinear/DequantizeLinear) needs opset 13.
QDQ_OPSET = 13
DERIVED_KIND = "int8-qdq"
_ORT_LOG_ERRORS_ONLY = 3
_DERIVED_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Operators that carry the network's compute; the float tail is what follows the last of them.
_COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})


@dataclass(frozen=True, slots=True)
class QuantizeResult:
    """What `quantize_model` made: the registered name, file, hash and the calibration used."""

    name: str
    path: Path
    sha256: str
    base: str
    frames: int
    float_nodes: int
    matched_boxes: int
    float_boxes: int


def calibration_frames(clip: Path, count: int) -> Iterator[np.ndarray]:
    """Up to `count` BGR frames spread evenly over `clip`, decoded by the agent's file source.

    Raises:
        SourceError: the clip is missing, cannot be opened or has no decodable frame.
    """
    if count < 1:
        raise SourceError(f"calibration needs at least 1 frame, got {count}")
    frames = iter(FileReplay("calibration", clip))
    first = next(frames)  # opens the file: a missing or unreadable clip fails here, in the source's words
    total = _frame_count(clip)
    step = max(1, total // count) if total > 0 else 1
    taken = 0
    for frame in itertools.chain([first], frames):
        if frame.frame_index % step == 0:
            yield frame.image_bgr
            taken += 1
            if taken >= count:
                return


def _frame_count(clip: Path) -> int:
    # Only to spread the frames; decoding itself is the file source's.
    cap = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG)
    try:
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return int(n) if np.isfinite(n) and n > 0 else 0


class _FrameReader:
    """`CalibrationDataReader` over preprocessed clip frames (one input dict per frame)."""

    def __init__(self, spec: ModelSpec, frames: list[np.ndarray]) -> None:
        pre = Preprocessor(spec, spec.input_size_hw)
        tensors = []
        for image in frames:
            pre.update(image)
            tensors.append(pre.tensor.copy())
        self._feeds = iter([{spec.input_name: t} for t in tensors])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover (ORT calls it only for some calibrators)
        pass


def float_tail_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes between the last compute operators and the graph outputs."""
    producer = {out: node for node in model.graph.node for out in node.output}
    tail: dict[str, onnx.NodeProto] = {}
    pending = [o.name for o in model.graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.op_type in _COMPUTE_OPS or node.name in tail:
            continue
        tail[node.name] = node
        pending.extend(node.input)
    return sorted(tail)


def _prepared_float_model(path: Path, work: Path) -> Path:
    """The float model at opset >= 13, every node named (the exclusion list names nodes), pre-processed."""
    model = onnx.load(str(path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < QDQ_OPSET:
        try:
            model = version_converter.convert_version(model, QDQ_OPSET)
        except Exception as err:  # the converter raises its own C++ error types
            raise ModelError(f"model file {path}: cannot convert opset {opset} to {QDQ_OPSET}: {err}") from err
    converted = work / "float_opset13.onnx"
    onnx.save(model, str(converted))
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "float_prepared.onnx"
    try:
        # Symbolic shape inference needs sympy; the shapes of these graphs are static enough without it.
        quant_pre_process(str(converted), str(out), skip_symbolic_shape=True)
    except Exception as err:  # ORT's optimiser raises its own error types
        raise ModelError(f"model file {path}: quantization pre-processing failed: {err}") from err
    prepared = onnx.load(str(out))
    for i, node in enumerate(prepared.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    onnx.save(prepared, str(out))
    return out


def _check_out_name(name: str) -> str:
    manifest = load_manifest()
    if not _DERIVED_NAME.fullmatch(name):
        raise ModelError(f"model name {name!r}: use lower-case letters, digits, '.', '_' or '-' (64 at most)")
    if name in manifest or f"{name}.onnx" in {s.file_name for s in manifest.values()}:
        raise ModelError(f"model name {name!r} is taken by a manifest entry or file; give another --out-name")
    return name


def _register(name: str, base: ModelSpec, base_sha256: str, tmp: Path, note: str) -> tuple[Path, str]:
    """Move `tmp` into the user cache as `<name>.onnx` and record its hash in the derived index."""
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    records = read_derived_index()
    sha = file_sha256(tmp)
    records[name] = {
        "base": base.name,
        "base_sha256": base_sha256,
        "file": f"{name}.onnx",
        "sha256": sha,
        "kind": DERIVED_KIND,
        "note": note,
    }
    final = target / f"{name}.onnx"
    os.replace(tmp, final)
    index = derived_index_path()
    part = index.with_name(index.name + ".part")
    part.write_text(json.dumps({"version": 1, "models": records}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(part, index)
    return final, sha


def quantize_model(base_name: str, clip: Path, *, frames: int = 32, out_name: str | None = None) -> QuantizeResult:
    """Write an INT8 QDQ copy of manifest model `base_name`, calibrated on `frames` frames of `clip`.

    The copy is registered in the user cache as `out_name` (default `<base_name>-int8`),
    with the input and output contract of its base entry.

    Raises:
        ModelError: unknown or unusable base model, a bad output name, or quantization failure.
        SourceError: the clip cannot be read.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    # The optimiser's notes on unused initializers are noise to whoever runs the command.
    ort.set_default_logger_severity(_ORT_LOG_ERRORS_ONLY)

    if base_name not in load_manifest():
        resolve_model(base_name)  # the store's own message for an unknown name
        raise ModelError(f"model {base_name!r} is not a manifest entry; only manifest models can be quantized")
    name = _check_out_name(out_name or f"{base_name}-int8")
    spec, path = resolve_model(base_name)
    images = list(calibration_frames(clip, frames))
    reader = _FrameReader(spec, images)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".quantize-", dir=cache) as tmp:
        work = Path(tmp)
        prepared = _prepared_float_model(path, work)
        exclude = float_tail_nodes(onnx.load(str(prepared)))
        out = work / f"{name}.onnx"
        try:
            quantize_static(
                str(prepared),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude,
                calibrate_method=CalibrationMethod.MinMax,
                # Ranges averaged over the frames: the plain min/max of one outlier frame cost 0.15 AP50.
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "CalibMovingAverage": True},
            )
        except Exception as err:  # ORT raises plain and pybind errors from inside the quantizer
            raise ModelError(f"quantizing {base_name!r} failed: {type(err).__name__}: {err}") from err
        # Checked before it is registered: the copy must keep its base entry's contract.
        check_output_contract(replace(spec, name=name), out)
        note = f"calibrated on {len(images)} frames of {clip.name}"
        final, sha = _register(name, spec, file_sha256(path), out, note)
    matched, total = box_agreement(base_name, name, images)
    return QuantizeResult(name, final, sha, base_name, len(images), len(exclude), matched, total)


def box_agreement(base: str, derived: str, images: list[np.ndarray], score: float = 0.3) -> tuple[int, int]:
    """How many boxes of the float model (score >= `score`, any class) the copy finds at IoU 0.5, same class.

    Both models load by name through the normal detector path.
    """
    from agent.detection.box_ops import iou_matrix_numpy
    from agent.detection.detector import DetectorOptions, ObjectDetector

    opts = DetectorOptions(score_threshold=score, intra_op_threads=1)
    matched = total = 0
    with ObjectDetector.from_model(base, opts) as ref, ObjectDetector.from_model(derived, opts) as q8:
        for image in images:
            a, b = ref.detect(image), q8.detect(image)
            total += len(a.score)
            if len(a.score) and len(b.score):
                iou = iou_matrix_numpy(a.box_xyxy_px, b.box_xyxy_px, a.class_id, b.class_id)
                matched += int((iou.max(axis=1) >= 0.5).sum())
    return matched, total
