"""One interface over the output layouts: model outputs -> candidate boxes.

An adapter is configured once (layout details from the manifest, input
size, score threshold, classes of interest) and then called per frame with
the session's outputs in manifest order.
"""

from __future__ import annotations

__all__ = ["GflAdapter", "OutputAdapter", "Yolov8Adapter", "YoloxAdapter", "make_adapter"]

from collections.abc import Callable
from typing import Protocol

import numpy as np

from agent.detection.decoding import (
    CandidateBuffers,
    Candidates,
    decode_gfl,
    decode_yolov8,
    decode_yolox,
)
from agent.detection.manifest import ModelSpec
from agent.errors import ModelError


class OutputAdapter(Protocol):
    """Decodes one frame's raw outputs into candidate boxes in model-input pixels."""

    def decode(self, outputs: list[np.ndarray]) -> Candidates: ...


class YoloxAdapter:
    """YOLOX grid output [1, N, 5+C] over strides 8, 16, 32."""

    def __init__(
        self, spec: ModelSpec, input_size_hw: tuple[int, int], score_threshold: float, class_mask: np.ndarray
    ) -> None:
        self._strides = spec.strides
        self._size = input_size_hw
        self._threshold = score_threshold
        self._mask = class_mask
        self._buffers = CandidateBuffers(sum(spec.anchors_per_stride(input_size_hw)))

    def decode(self, outputs: list[np.ndarray]) -> Candidates:
        return decode_yolox(outputs[0], self._strides, self._size, self._threshold, self._mask, self._buffers)


class GflAdapter:
    """GFL heads (PicoDet, NanoDet): per-stride score tensors, then per-stride distance bins."""

    def __init__(
        self, spec: ModelSpec, input_size_hw: tuple[int, int], score_threshold: float, class_mask: np.ndarray
    ) -> None:
        self._strides = spec.strides
        self._levels = len(spec.strides)
        self._size = input_size_hw
        self._shift = spec.centre_shift_px
        self._threshold = score_threshold
        self._mask = class_mask
        self._buffers = CandidateBuffers(sum(spec.anchors_per_stride(input_size_hw)))

    def decode(self, outputs: list[np.ndarray]) -> Candidates:
        n = self._levels
        return decode_gfl(
            outputs[:n],
            outputs[n : 2 * n],
            self._strides,
            self._size,
            self._shift,
            self._threshold,
            self._mask,
            self._buffers,
        )


class Yolov8Adapter:
    """Anchor-free [1, 4+C, N] export: cx, cy, w, h in input pixels, then class scores."""

    def __init__(
        self, spec: ModelSpec, input_size_hw: tuple[int, int], score_threshold: float, class_mask: np.ndarray
    ) -> None:
        self._threshold = score_threshold
        self._mask = class_mask
        self._buffers = CandidateBuffers(sum(spec.anchors_per_stride(input_size_hw)))

    def decode(self, outputs: list[np.ndarray]) -> Candidates:
        return decode_yolov8(outputs[0], self._threshold, self._mask, self._buffers)


_ADAPTERS: dict[str, Callable[[ModelSpec, tuple[int, int], float, np.ndarray], OutputAdapter]] = {
    "yolox": YoloxAdapter,
    "gfl": GflAdapter,
    "yolov8": Yolov8Adapter,
}


def make_adapter(
    spec: ModelSpec, input_size_hw: tuple[int, int], score_threshold: float, class_mask: np.ndarray
) -> OutputAdapter:
    """The adapter for `spec.layout`.

    Raises:
        ModelError: the layout is unknown.
    """
    adapter = _ADAPTERS.get(spec.layout)
    if adapter is None:
        raise ModelError(f"model {spec.name!r}: no decoder for layout {spec.layout!r}")
    return adapter(spec, input_size_hw, score_threshold, class_mask)
