"""Raw model outputs -> candidate boxes in model-input pixels, per output layout.

Three layouts: `yolox` (one [N, 5+C] grid tensor), `gfl` (per-stride class
scores and 4 x (reg_max+1) distance bins, PicoDet/NanoDet) and `yolov8`
([4+C, N], centre/size then class scores). Each decoder keeps, per anchor,
the best class among the classes of interest when its score reaches the
threshold. Numba kernels (`agent.kernels`: compiled ahead of time, else by the
JIT) write into caller-owned `CandidateBuffers`; each has a NumPy reference
(`*_numpy`) that returns the same candidates in the same order. The wrappers
pass each kernel the types of its one signature: float32 C-contiguous model
outputs and a bool class mask.
"""

from __future__ import annotations

__all__ = [
    "CandidateBuffers",
    "Candidates",
    "decode_gfl",
    "decode_gfl_numpy",
    "decode_yolov8",
    "decode_yolov8_numpy",
    "decode_yolox",
    "decode_yolox_numpy",
    "grid_shapes",
]

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.kernels import kernel


@dataclass(frozen=True, slots=True)
class Candidates:
    """Boxes that passed the score threshold, before NMS.

    Attributes:
        box_xyxy_input: (k, 4) float32 in model-input pixels.
        score: (k,) float32.
        class_id: (k,) int32.
    """

    box_xyxy_input: np.ndarray
    score: np.ndarray
    class_id: np.ndarray

    def __len__(self) -> int:
        return int(self.score.shape[0])


class CandidateBuffers:
    """Preallocated output arrays for one detector (capacity = anchors per frame)."""

    def __init__(self, capacity: int) -> None:
        self.box = np.empty((capacity, 4), np.float32)
        self.score = np.empty(capacity, np.float32)
        self.class_id = np.empty(capacity, np.int32)

    def view(self, count: int) -> Candidates:
        return Candidates(self.box[:count], self.score[:count], self.class_id[:count])


def grid_shapes(strides: Sequence[int], input_size_hw: tuple[int, int]) -> np.ndarray:
    """(levels, 3) int64 rows of (stride, grid_h, grid_w); partial cells count."""
    h, w = input_size_hw
    return np.array([(s, math.ceil(h / s), math.ceil(w / s)) for s in strides], np.int64)


def _f32(a: np.ndarray) -> np.ndarray:
    # A no-op for the float32 C-contiguous outputs of the models; a copy for anything else.
    return np.ascontiguousarray(a, np.float32)


def _mask(class_mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(class_mask, np.bool_)


def _empty_candidates() -> Candidates:
    return Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))


# ---------------------------------------------------------------- YOLOX


# Outputs: box (n, 4) float32, score float32, class int32; the count of candidates is returned.
_OUT = "f4[:, ::1], f4[::1], i4[::1]"


@kernel(f"i8(f4[:, ::1], i8[:, ::1], f8, b1[::1], {_OUT})")
def _decode_yolox(
    pred: np.ndarray,
    grids: np.ndarray,
    score_threshold: float,
    class_mask: np.ndarray,
    out_box: np.ndarray,
    out_score: np.ndarray,
    out_cls: np.ndarray,
) -> int:  # pragma: no cover
    n_cls = pred.shape[1] - 5
    row = 0
    k = 0
    for level in range(grids.shape[0]):
        stride, gh, gw = grids[level, 0], grids[level, 1], grids[level, 2]
        for gy in range(gh):
            for gx in range(gw):
                obj = pred[row, 4]
                if obj >= score_threshold:  # score = obj * cls <= obj: skip the class loop early
                    best = -1
                    best_score = np.float32(0.0)
                    for c in range(n_cls):
                        if class_mask[c]:
                            v = obj * pred[row, 5 + c]
                            if v > best_score:
                                best_score = v
                                best = c
                    if best >= 0 and best_score >= score_threshold:
                        cx = (pred[row, 0] + gx) * stride
                        cy = (pred[row, 1] + gy) * stride
                        hw = np.exp(pred[row, 2]) * stride * 0.5
                        hh = np.exp(pred[row, 3]) * stride * 0.5
                        out_box[k, 0] = cx - hw
                        out_box[k, 1] = cy - hh
                        out_box[k, 2] = cx + hw
                        out_box[k, 3] = cy + hh
                        out_score[k] = best_score
                        out_cls[k] = best
                        k += 1
                row += 1
    return k


def decode_yolox(
    pred: np.ndarray,
    strides: Sequence[int],
    input_size_hw: tuple[int, int],
    score_threshold: float,
    class_mask: np.ndarray,
    out: CandidateBuffers | None = None,
) -> Candidates:
    """Decode a YOLOX [1, N, 5+C] (or [N, 5+C]) output: xy=(p+grid)*s, wh=exp(p)*s, score=obj*cls."""
    pred2 = _f32(pred.reshape(-1, pred.shape[-1]))
    buf = out or CandidateBuffers(pred2.shape[0])
    k = _decode_yolox(
        pred2,
        grid_shapes(strides, input_size_hw),
        float(score_threshold),
        _mask(class_mask),
        buf.box,
        buf.score,
        buf.class_id,
    )
    return buf.view(k)


def _grid_xy_stride(grids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ss = [], [], []
    for stride, gh, gw in grids:
        gy, gx = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        xs.append(gx.ravel())
        ys.append(gy.ravel())
        ss.append(np.full(gh * gw, stride))
    return (
        np.concatenate(xs).astype(np.float32),
        np.concatenate(ys).astype(np.float32),
        np.concatenate(ss).astype(np.float32),
    )


def _best_class(
    scores: np.ndarray, class_mask: np.ndarray, score_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    masked = np.where(class_mask[None, :], scores, np.float32(0.0))
    best = masked.argmax(axis=1).astype(np.int32)
    best_score = masked[np.arange(len(best)), best]
    keep = (best_score >= score_threshold) & (best_score > 0)
    return keep, best_score.astype(np.float32), best


def decode_yolox_numpy(
    pred: np.ndarray,
    strides: Sequence[int],
    input_size_hw: tuple[int, int],
    score_threshold: float,
    class_mask: np.ndarray,
) -> Candidates:
    """NumPy reference of `decode_yolox`."""
    p = pred.reshape(-1, pred.shape[-1]).astype(np.float32)
    gx, gy, s = _grid_xy_stride(grid_shapes(strides, input_size_hw))
    keep, score, cls = _best_class(p[:, 5:] * p[:, 4:5], class_mask, score_threshold)
    keep &= p[:, 4] >= score_threshold
    cx, cy = (p[:, 0] + gx) * s, (p[:, 1] + gy) * s
    hw, hh = np.exp(p[:, 2]) * s * 0.5, np.exp(p[:, 3]) * s * 0.5
    box = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1).astype(np.float32)
    return Candidates(box[keep], score[keep], cls[keep])


# ---------------------------------------------------------------- GFL (PicoDet, NanoDet)


@kernel(f"i8(f4[:, ::1], f4[:, ::1], i8, i8, f8, f8, b1[::1], {_OUT}, i8)")
def _decode_gfl_level(
    cls: np.ndarray,
    dis: np.ndarray,
    stride: int,
    grid_w: int,
    centre_shift: float,
    score_threshold: float,
    class_mask: np.ndarray,
    out_box: np.ndarray,
    out_score: np.ndarray,
    out_cls: np.ndarray,
    k: int,
) -> int:  # pragma: no cover
    n_cls = cls.shape[1]
    bins = dis.shape[1] // 4
    for i in range(cls.shape[0]):
        best = -1
        best_score = np.float32(0.0)
        for c in range(n_cls):
            if class_mask[c] and cls[i, c] > best_score:
                best_score = cls[i, c]
                best = c
        if best < 0 or best_score < score_threshold:
            continue
        cx = ((i % grid_w) + 0.5) * stride + centre_shift
        cy = ((i // grid_w) + 0.5) * stride + centre_shift
        for side in range(4):
            base = side * bins
            m = dis[i, base]
            for b in range(1, bins):
                m = max(m, dis[i, base + b])
            total = 0.0
            expect = 0.0
            for b in range(bins):
                e = np.exp(dis[i, base + b] - m)
                total += e
                expect += e * b
            d = expect / total * stride
            if side == 0:
                out_box[k, 0] = cx - d
            elif side == 1:
                out_box[k, 1] = cy - d
            elif side == 2:
                out_box[k, 2] = cx + d
            else:
                out_box[k, 3] = cy + d
        out_score[k] = best_score
        out_cls[k] = best
        k += 1
    return k


def decode_gfl(
    cls_levels: Sequence[np.ndarray],
    dis_levels: Sequence[np.ndarray],
    strides: Sequence[int],
    input_size_hw: tuple[int, int],
    centre_shift_px: float,
    score_threshold: float,
    class_mask: np.ndarray,
    out: CandidateBuffers | None = None,
) -> Candidates:
    """Decode GFL outputs: per stride [1, N_s, C] sigmoid scores and [1, N_s, 4*(reg_max+1)] bins.

    Distances are the softmax expectation over bins (left, top, right, bottom),
    times the stride, from the anchor centre `(grid + 0.5) * stride + centre_shift_px`.
    """
    grids = grid_shapes(strides, input_size_hw)
    buf = out or CandidateBuffers(sum(c.reshape(-1, c.shape[-1]).shape[0] for c in cls_levels))
    k = 0
    mask = _mask(class_mask)
    for (stride, _gh, gw), cls, dis in zip(grids, cls_levels, dis_levels, strict=False):
        k = _decode_gfl_level(
            _f32(cls.reshape(-1, cls.shape[-1])),
            _f32(dis.reshape(-1, dis.shape[-1])),
            int(stride),
            int(gw),
            float(centre_shift_px),
            float(score_threshold),
            mask,
            buf.box,
            buf.score,
            buf.class_id,
            k,
        )
    return buf.view(k)


def decode_gfl_numpy(
    cls_levels: Sequence[np.ndarray],
    dis_levels: Sequence[np.ndarray],
    strides: Sequence[int],
    input_size_hw: tuple[int, int],
    centre_shift_px: float,
    score_threshold: float,
    class_mask: np.ndarray,
) -> Candidates:
    """NumPy reference of `decode_gfl`."""
    grids = grid_shapes(strides, input_size_hw)
    cls = np.concatenate([c.reshape(-1, c.shape[-1]) for c in cls_levels]).astype(np.float32)
    dis = np.concatenate([d.reshape(-1, d.shape[-1]) for d in dis_levels]).astype(np.float32)
    gx, gy, s = _grid_xy_stride(grids)
    keep, score, best = _best_class(cls, class_mask, score_threshold)
    bins = dis.reshape(len(dis), 4, -1)
    e = np.exp(bins - bins.max(axis=2, keepdims=True))
    dist = (e * np.arange(bins.shape[2], dtype=np.float32)).sum(axis=2) / e.sum(axis=2) * s[:, None]
    cx, cy = (gx + 0.5) * s + centre_shift_px, (gy + 0.5) * s + centre_shift_px
    box = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], axis=1)
    return Candidates(box.astype(np.float32)[keep], score[keep], best[keep])


# ---------------------------------------------------------------- YOLOv8-style [4+C, N]


@kernel(f"i8(f4[:, ::1], f8, b1[::1], {_OUT})")
def _decode_yolov8(
    pred: np.ndarray,
    score_threshold: float,
    class_mask: np.ndarray,
    out_box: np.ndarray,
    out_score: np.ndarray,
    out_cls: np.ndarray,
) -> int:  # pragma: no cover
    n_cls = pred.shape[0] - 4
    k = 0
    for i in range(pred.shape[1]):
        best = -1
        best_score = np.float32(0.0)
        for c in range(n_cls):
            if class_mask[c] and pred[4 + c, i] > best_score:
                best_score = pred[4 + c, i]
                best = c
        if best < 0 or best_score < score_threshold:
            continue
        hw = pred[2, i] * 0.5
        hh = pred[3, i] * 0.5
        out_box[k, 0] = pred[0, i] - hw
        out_box[k, 1] = pred[1, i] - hh
        out_box[k, 2] = pred[0, i] + hw
        out_box[k, 3] = pred[1, i] + hh
        out_score[k] = best_score
        out_cls[k] = best
        k += 1
    return k


def decode_yolov8(
    pred: np.ndarray, score_threshold: float, class_mask: np.ndarray, out: CandidateBuffers | None = None
) -> Candidates:
    """Decode a [1, 4+C, N] output: cx, cy, w, h in input pixels, then class scores (no objectness)."""
    pred2 = _f32(pred.reshape(pred.shape[-2], pred.shape[-1]))
    buf = out or CandidateBuffers(pred2.shape[1])
    k = _decode_yolov8(pred2, float(score_threshold), _mask(class_mask), buf.box, buf.score, buf.class_id)
    return buf.view(k)


def decode_yolov8_numpy(pred: np.ndarray, score_threshold: float, class_mask: np.ndarray) -> Candidates:
    """NumPy reference of `decode_yolov8`."""
    p = pred.reshape(pred.shape[-2], pred.shape[-1]).astype(np.float32).T
    keep, score, cls = _best_class(p[:, 4:], class_mask, score_threshold)
    cx, cy, hw, hh = p[:, 0], p[:, 1], p[:, 2] * 0.5, p[:, 3] * 0.5
    box = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1).astype(np.float32)
    return Candidates(box[keep], score[keep], cls[keep])
