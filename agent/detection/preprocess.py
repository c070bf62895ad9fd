"""Frame to model input: resize (letterbox or plain) and the fused tensor conversion.

Owns `InputTransform` (how to map model-input pixels back to the frame) and
`Preprocessor`, which keeps one preallocated input tensor per detector.
`cv2.resize` does the resampling; a Numba kernel (`agent.kernels`) fuses HWC
uint8 -> NCHW float32 with channel swap and mean/std normalisation, writing
only the image region (the letterbox pad is filled once per frame size).
"""

from __future__ import annotations

__all__ = ["InputTransform", "Preprocessor", "hwc_to_nchw_normalised", "hwc_to_nchw_normalised_numpy"]

from dataclasses import dataclass

import cv2
import numpy as np

from agent.detection.manifest import ModelSpec
from agent.kernels import kernel


@dataclass(frozen=True, slots=True)
class InputTransform:
    """Mapping from model-input pixels to frame pixels: `frame = input / scale`.

    Attributes:
        scale_x: input pixels per frame pixel along x.
        scale_y: input pixels per frame pixel along y (equal to scale_x for letterbox).
        frame_size_wh: original frame width and height, for clipping.
    """

    scale_x: float
    scale_y: float
    frame_size_wh: tuple[int, int]

    def to_frame(self, box_xyxy_input: np.ndarray) -> np.ndarray:
        """Return boxes in frame pixels, clipped to the frame (new array)."""
        w, h = self.frame_size_wh
        out = box_xyxy_input.astype(np.float32, copy=True)
        out[:, 0::2] = np.clip(out[:, 0::2] / self.scale_x, 0.0, float(w))
        out[:, 1::2] = np.clip(out[:, 1::2] / self.scale_y, 0.0, float(h))
        return out


@kernel("void(u1[:, :, ::1], f4[:, :, :, ::1], i8[::1], f4[::1], f4[::1])")
def _hwc_to_nchw(
    src: np.ndarray, dst: np.ndarray, channel_src: np.ndarray, mean: np.ndarray, inv_std: np.ndarray
) -> None:  # pragma: no cover (compiled)
    h, w = src.shape[0], src.shape[1]
    for c in range(3):
        sc = channel_src[c]
        m = mean[c]
        k = inv_std[c]
        for y in range(h):
            for x in range(w):
                dst[0, c, y, x] = (np.float32(src[y, x, sc]) - m) * k


def _channel_src(colour_order: str) -> np.ndarray:
    # Frames are BGR; an RGB model reads source channel 2 into its channel 0.
    return np.array([2, 1, 0] if colour_order == "rgb" else [0, 1, 2], np.int64)


def hwc_to_nchw_normalised(
    src_hwc_u8: np.ndarray, dst_nchw: np.ndarray, colour_order: str, mean: np.ndarray, std: np.ndarray
) -> None:
    """Write `src` (h, w, 3) uint8 BGR into `dst[0, :, :h, :w]` as normalised float32.

    `mean`/`std` are float32 in the model's channel order.

    Raises:
        ValueError: `src` is not (h, w, 3), or `dst` is not a C-contiguous float32 (1, 3, H, W) with room for it.
    """
    src = np.ascontiguousarray(src_hwc_u8, np.uint8)
    if src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"src must be (h, w, 3), got {src.shape}")
    h, w = src.shape[:2]
    # The kernel writes into `dst` unchecked (a converted copy would lose the result).
    fits = dst_nchw.ndim == 4 and dst_nchw.shape[1] == 3 and dst_nchw.shape[2] >= h and dst_nchw.shape[3] >= w
    if not (fits and dst_nchw.dtype == np.float32 and dst_nchw.flags.c_contiguous):
        raise ValueError(
            f"dst must be C-contiguous float32 (1, 3, >={h}, >={w}), got {dst_nchw.dtype} {dst_nchw.shape}"
        )
    _hwc_to_nchw(
        src,
        dst_nchw,
        _channel_src(colour_order),
        np.ascontiguousarray(mean, np.float32),
        np.ascontiguousarray(1.0 / std, np.float32),
    )


def hwc_to_nchw_normalised_numpy(
    src_hwc_u8: np.ndarray, dst_nchw: np.ndarray, colour_order: str, mean: np.ndarray, std: np.ndarray
) -> None:
    """NumPy reference of `hwc_to_nchw_normalised`."""
    h, w = src_hwc_u8.shape[:2]
    chw = src_hwc_u8[:, :, _channel_src(colour_order)].transpose(2, 0, 1).astype(np.float32)
    inv = (1.0 / std).astype(np.float32)[:, None, None]
    dst_nchw[0, :, :h, :w] = (chw - mean.astype(np.float32)[:, None, None]) * inv


class Preprocessor:
    """Turns BGR frames into one reused (1, 3, H, W) float32 input tensor."""

    def __init__(self, spec: ModelSpec, input_size_hw: tuple[int, int]) -> None:
        self.input_size_hw = input_size_hw
        self.tensor = np.zeros((1, 3, *input_size_hw), np.float32)
        self._letterbox = spec.resize_mode == "letterbox"
        self._colour_order = spec.colour_order
        self._mean = np.asarray(spec.mean, np.float32)
        self._std = np.asarray(spec.std, np.float32)
        self._pad_norm = (np.float32(spec.pad_value) - self._mean) / self._std
        self._channel_src = _channel_src(spec.colour_order)
        self._inv_std = (1.0 / self._std).astype(np.float32)
        self._resized: np.ndarray | None = None
        self._frame_size_wh: tuple[int, int] | None = None
        self._transform: InputTransform | None = None

    def _prepare(self, frame_w: int, frame_h: int) -> InputTransform:
        """Size the resize buffer and fill the pad once per frame size."""
        in_h, in_w = self.input_size_hw
        if self._letterbox:
            r = min(in_h / frame_h, in_w / frame_w)
            new_w, new_h = max(1, int(frame_w * r)), max(1, int(frame_h * r))
            transform = InputTransform(r, r, (frame_w, frame_h))
        else:
            new_w, new_h = in_w, in_h
            transform = InputTransform(in_w / frame_w, in_h / frame_h, (frame_w, frame_h))
        self._resized = np.empty((new_h, new_w, 3), np.uint8)
        self.tensor[...] = self._pad_norm[None, :, None, None]
        self._frame_size_wh = (frame_w, frame_h)
        self._transform = transform
        return transform

    def update(self, image_bgr: np.ndarray) -> InputTransform:
        """Fill `self.tensor` from a (H, W, 3) uint8 BGR frame; return how to undo it."""
        h, w = image_bgr.shape[:2]
        transform = self._transform
        if transform is None or self._frame_size_wh != (w, h):
            transform = self._prepare(w, h)
        resized = self._resized
        if resized is None:  # _prepare always sets it; kept for the type checker
            raise RuntimeError("resize buffer missing")
        rh, rw = resized.shape[:2]
        src = image_bgr
        if (rh, rw) != (h, w):
            src = cv2.resize(image_bgr, (rw, rh), dst=resized, interpolation=cv2.INTER_LINEAR)
        elif not image_bgr.flags.c_contiguous:
            # A crop of a frame at the input size: into the buffer, not a new contiguous copy.
            np.copyto(resized, image_bgr)
            src = resized
        _hwc_to_nchw(np.ascontiguousarray(src, np.uint8), self.tensor, self._channel_src, self._mean, self._inv_std)
        return transform
