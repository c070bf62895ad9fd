"""Solid fills over faces and persons: redaction that cannot be undone.

Blurring and pixelation keep enough of a face to be reversed or matched;
a solid fill keeps nothing. Each face box grows by a margin on every side
first, because detector boxes are tight and hair, ears and chin identify too.
"""

from __future__ import annotations

__all__ = ["FILL_BGR", "expand_boxes", "face_fill_boxes", "fill_boxes"]

import numpy as np

# Mid grey: a fill that JPEG encodes without ringing and no one mistakes for shadow.
FILL_BGR: tuple[int, int, int] = (128, 128, 128)


def expand_boxes(box_xyxy_px: np.ndarray, margin: float, size_wh: tuple[int, int]) -> np.ndarray:
    """Integer boxes grown by `margin` x their width/height on each side, clipped to the image.

    Returns:
        (n, 4) int32 `x1, y1, x2, y2` with x2/y2 exclusive; rounding goes outwards.
    """
    boxes = np.asarray(box_xyxy_px, dtype=np.float64).reshape(-1, 4)
    w, h = size_wh
    dx = (boxes[:, 2] - boxes[:, 0]) * margin
    dy = (boxes[:, 3] - boxes[:, 1]) * margin
    out = np.stack(
        [
            np.floor(boxes[:, 0] - dx),
            np.floor(boxes[:, 1] - dy),
            np.ceil(boxes[:, 2] + dx),
            np.ceil(boxes[:, 3] + dy),
        ],
        axis=1,
    )
    out[:, 0::2] = np.clip(out[:, 0::2], 0, w)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, h)
    return out.astype(np.int32)


def face_fill_boxes(face_xyxy_px: np.ndarray, margin: float, size_wh: tuple[int, int]) -> np.ndarray:
    """The areas to fill for detected faces: each box made at least as wide as it is tall, then grown.

    Face detectors box the face, not the head: hair and ears stick out
    sideways, and a turned head shows more of one side than the box. Widening
    to a square first covers that (measured against Haar boxes, which are
    square and looser: see benchmarks/bench_redaction.py).
    """
    boxes = np.asarray(face_xyxy_px, dtype=np.float64).reshape(-1, 4).copy()
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    grow = np.maximum(height - width, 0.0) / 2.0
    boxes[:, 0] -= grow
    boxes[:, 2] += grow
    return expand_boxes(boxes, margin, size_wh)


def fill_boxes(image_bgr: np.ndarray, boxes_xyxy: np.ndarray, color_bgr: tuple[int, int, int] = FILL_BGR) -> np.ndarray:
    """A copy of `image_bgr` with every box filled solid; the input is not changed.

    Slice assignment is already a memset per row; a compiled loop would not be faster.
    """
    out = image_bgr.copy()
    fill = np.asarray(color_bgr, dtype=out.dtype)
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, dtype=np.int64).reshape(-1, 4):
        if x2 > x1 and y2 > y1:
            out[y1:y2, x1:x2] = fill
    return out
