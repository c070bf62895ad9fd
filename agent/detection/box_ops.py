"""Box math on (n, 4) float32 `x1, y1, x2, y2` arrays: IoU matrix and NMS, the one NMS policy.

Shared by the detector (class-aware NMS, evaluation), the face detector of
redaction (`nms`, one class) and the tracker (class-aware IoU for association).

Each operation is a Numba kernel (`agent.kernels`) behind a typed wrapper
that passes it exactly its signature's types, with a NumPy reference of the
same name plus `_numpy`; tests hold them to the same result and the
benchmark reports the speed ratio. Box areas are continuous
(`(x2 - x1) * (y2 - y1)`, no +1).
"""

from __future__ import annotations

__all__ = ["iou_matrix", "iou_matrix_numpy", "nms", "nms_class_aware", "nms_class_aware_numpy"]

import numpy as np

from agent.kernels import kernel


@kernel("f4[:, ::1](f4[:, ::1], f4[:, ::1], i4[::1], i4[::1], b1)")
def _iou_kernel(a: np.ndarray, b: np.ndarray, ca: np.ndarray, cb: np.ndarray, class_aware: bool) -> np.ndarray:
    n, m = a.shape[0], b.shape[0]
    out = np.zeros((n, m), np.float32)
    for i in range(n):
        area_a = max(a[i, 2] - a[i, 0], 0.0) * max(a[i, 3] - a[i, 1], 0.0)
        for j in range(m):
            if class_aware and ca[i] != cb[j]:
                continue
            iw = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
            ih = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
            if iw <= 0.0 or ih <= 0.0:
                continue
            inter = iw * ih
            area_b = max(b[j, 2] - b[j, 0], 0.0) * max(b[j, 3] - b[j, 1], 0.0)
            union = area_a + area_b - inter
            if union > 0.0:
                out[i, j] = inter / union
    return out


def iou_matrix(
    a_xyxy: np.ndarray,
    b_xyxy: np.ndarray,
    class_a: np.ndarray | None = None,
    class_b: np.ndarray | None = None,
) -> np.ndarray:
    """(n, m) float32 IoU; pairs of different classes get 0 when classes are given."""
    a = np.ascontiguousarray(a_xyxy, np.float32).reshape(-1, 4)
    b = np.ascontiguousarray(b_xyxy, np.float32).reshape(-1, 4)
    aware = class_a is not None and class_b is not None
    ca = np.ascontiguousarray(class_a if aware else np.zeros(len(a)), np.int32)
    cb = np.ascontiguousarray(class_b if aware else np.zeros(len(b)), np.int32)
    return _iou_kernel(a, b, ca, cb, aware)


def _area_numpy(xyxy: np.ndarray) -> np.ndarray:
    area: np.ndarray = np.clip(xyxy[..., 2] - xyxy[..., 0], 0, None) * np.clip(xyxy[..., 3] - xyxy[..., 1], 0, None)
    return area


def iou_matrix_numpy(
    a_xyxy: np.ndarray,
    b_xyxy: np.ndarray,
    class_a: np.ndarray | None = None,
    class_b: np.ndarray | None = None,
) -> np.ndarray:
    """NumPy reference of `iou_matrix`."""
    a = np.asarray(a_xyxy, np.float32).reshape(-1, 1, 4)
    b = np.asarray(b_xyxy, np.float32).reshape(1, -1, 4)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = _area_numpy(a) + _area_numpy(b) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0).astype(np.float32)
    if class_a is not None and class_b is not None:
        iou[np.asarray(class_a)[:, None] != np.asarray(class_b)[None, :]] = 0
    return iou


@kernel("i8[:](f4[:, ::1], i8[::1], i4[::1], f8, i8)")
def _nms(
    boxes: np.ndarray, order: np.ndarray, class_id: np.ndarray, iou_threshold: float, max_keep: int
) -> np.ndarray:  # pragma: no cover (compiled)
    n = order.shape[0]
    suppressed = np.zeros(n, np.bool_)
    keep = np.empty(min(n, max_keep), np.int64)
    k = 0
    for oi in range(n):
        if suppressed[oi]:
            continue
        i = order[oi]
        keep[k] = i
        k += 1
        if k >= max_keep:
            break
        area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
        for oj in range(oi + 1, n):
            j = order[oj]
            if suppressed[oj] or class_id[j] != class_id[i]:
                continue
            iw = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            ih = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            if iw <= 0.0 or ih <= 0.0:
                continue
            inter = iw * ih
            area_j = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / (area_i + area_j - inter) > iou_threshold:
                suppressed[oj] = True
    return keep[:k]


def _score_order(score: np.ndarray) -> np.ndarray:
    # Stable sort so equal scores keep input order in both implementations.
    return np.argsort(-score, kind="stable").astype(np.int64)


def nms_class_aware(
    box_xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, iou_threshold: float, max_keep: int = 300
) -> np.ndarray:
    """Indices of boxes kept by greedy NMS within each class, highest score first.

    A box is dropped when it overlaps a kept box of the same class with IoU
    above `iou_threshold`.
    """
    if box_xyxy.shape[0] == 0:
        return np.zeros(0, np.int64)
    return _nms(
        np.ascontiguousarray(box_xyxy, np.float32).reshape(-1, 4),
        _score_order(score),
        np.ascontiguousarray(class_id, np.int32),
        float(iou_threshold),
        int(max_keep),
    )


def nms_class_aware_numpy(
    box_xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, iou_threshold: float, max_keep: int = 300
) -> np.ndarray:
    """NumPy reference of `nms_class_aware` (vectorised per kept box)."""
    order = _score_order(score)
    boxes = np.asarray(box_xyxy, np.float32)[order]
    cls = np.asarray(class_id)[order]
    alive = np.ones(len(order), bool)
    keep: list[int] = []
    for oi in range(len(order)):
        if not alive[oi]:
            continue
        keep.append(int(order[oi]))
        if len(keep) >= max_keep:
            break
        iou = iou_matrix_numpy(boxes[oi : oi + 1], boxes[oi + 1 :])[0]
        alive[oi + 1 :] &= ~((cls[oi + 1 :] == cls[oi]) & (iou > iou_threshold))
    return np.asarray(keep, np.int64)


def nms(box_xyxy: np.ndarray, score: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Indices of boxes kept by greedy NMS over all boxes as one class, highest score first.

    `max_keep` None keeps every box that survives.

    Raises:
        ValueError: `max_keep` is below 1.
    """
    if max_keep is not None and max_keep < 1:
        raise ValueError(f"max_keep must be at least 1, got {max_keep}")
    n = int(box_xyxy.shape[0])
    keep = max(n, 1) if max_keep is None else max_keep
    # IoU is computed in float32: take the threshold at float32 too, so a pair exactly at
    # the threshold is kept, as "above the threshold" says and as the NumPy reference does.
    threshold = float(np.float32(iou_threshold))
    return nms_class_aware(box_xyxy, score, np.zeros(n, np.int32), threshold, keep)
