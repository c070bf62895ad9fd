"""Geometry on all tracks at once: anchor points, point-in-polygon, side of a line.

Zones and lines arrive from the config in normalised (0-1) or pixel
coordinates and are turned into pixels once per frame size. The
point-in-polygon test (even-odd ray casting) and the side-of-line test
(signed distance and position along the segment) are Numba kernels
(`agent.kernels`) with the GIL released, each with a NumPy reference beside
it; tests keep them in agreement.

Line sides: walking from p1 to p2 as drawn on the image (x right, y down),
side A is on the left and side B on the right. `side_of_line` returns the
signed distance in pixels, negative on side A and positive on side B.
"""

from __future__ import annotations

__all__ = [
    "ANCHOR_CODES",
    "anchor_points",
    "anchor_points_by_class",
    "points_in_polygon",
    "points_in_polygon_reference",
    "polygon_to_pixels",
    "side_of_line",
    "side_of_line_reference",
]

from collections.abc import Sequence
from typing import Literal

import numpy as np

from agent.kernels import kernel

Anchor = Literal["bottom_center", "center", "top_center"]


def polygon_to_pixels(points: Sequence[tuple[float, float]], units: str, frame_wh: tuple[int, int]) -> np.ndarray:
    """Return an (n, 2) float64 polygon in frame pixels."""
    poly = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if units == "normalized":
        poly = poly * np.array(frame_wh, dtype=np.float64)
    return poly


# Anchor names as small integers, for the per-class lookup table.
ANCHOR_CODES: dict[str, int] = {"bottom_center": 0, "center": 1, "top_center": 2}


def anchor_points_by_class(
    box_xyxy_px: np.ndarray, class_id: np.ndarray, anchor_code_of_class: np.ndarray
) -> np.ndarray:
    """(n, 2) float64 anchor points where each class has its own anchor.

    Args:
        box_xyxy_px: (n, 4) boxes in pixels.
        class_id: (n,) class index of each box.
        anchor_code_of_class: (n_classes,) int8, an `ANCHOR_CODES` value per class.
    """
    boxes = np.asarray(box_xyxy_px, dtype=np.float64).reshape(-1, 4)
    codes = anchor_code_of_class[np.asarray(class_id, dtype=np.int64)]
    cx = (boxes[:, 0] + boxes[:, 2]) * 0.5
    y = np.where(codes == 0, boxes[:, 3], np.where(codes == 2, boxes[:, 1], (boxes[:, 1] + boxes[:, 3]) * 0.5))
    return np.stack([cx, y], axis=1)


def anchor_points(box_xyxy_px: np.ndarray, anchor: Anchor = "bottom_center") -> np.ndarray:
    """Return (n, 2) float64 anchor points of boxes: where an object 'stands'."""
    boxes = np.asarray(box_xyxy_px, dtype=np.float64).reshape(-1, 4)
    cx = (boxes[:, 0] + boxes[:, 2]) * 0.5
    if anchor == "bottom_center":
        y = boxes[:, 3]
    elif anchor == "top_center":
        y = boxes[:, 1]
    else:
        y = (boxes[:, 1] + boxes[:, 3]) * 0.5
    return np.stack([cx, y], axis=1)


@kernel("b1[:](f8[:, ::1], f8[:, ::1])")
def _points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    n_points = points.shape[0]
    n_vertices = polygon.shape[0]
    inside = np.zeros(n_points, dtype=np.bool_)
    for i in range(n_points):
        px = points[i, 0]
        py = points[i, 1]
        result = False
        j = n_vertices - 1
        for k in range(n_vertices):
            xk = polygon[k, 0]
            yk = polygon[k, 1]
            xj = polygon[j, 0]
            yj = polygon[j, 1]
            if (yk > py) != (yj > py):
                x_cross = xk + (py - yk) * (xj - xk) / (yj - yk)
                if px < x_cross:
                    result = not result
            j = k
        inside[i] = result
    return inside


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(n,) bool: which of the (n, 2) points lie inside the (m, 2) polygon (even-odd rule)."""
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.ascontiguousarray(polygon, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] == 0 or poly.shape[0] < 3:
        return np.zeros(pts.shape[0], dtype=np.bool_)
    return _points_in_polygon(pts, poly)


def points_in_polygon_reference(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """NumPy reference of `points_in_polygon`, vectorised over points and edges."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] == 0 or poly.shape[0] < 3:
        return np.zeros(pts.shape[0], dtype=np.bool_)
    xk, yk = poly[:, 0], poly[:, 1]
    xj, yj = np.roll(xk, 1), np.roll(yk, 1)
    px, py = pts[:, 0:1], pts[:, 1:2]
    straddles = (yk > py) != (yj > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = xk + (py - yk) * (xj - xk) / (yj - yk)
    crossings = straddles & (px < x_cross)
    return np.asarray(crossings.sum(axis=1) % 2 == 1, dtype=np.bool_)


@kernel("Tuple((f8[:], f8[:]))(f8[:, ::1], f8[::1], f8[::1])")
def _side_of_line(points: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dx = p2[0] - p1[0]
    dy = p2[1] - p1[1]
    length2 = dx * dx + dy * dy
    inv_length = 1.0 / np.sqrt(length2)
    n = points.shape[0]
    distance = np.empty(n, dtype=np.float64)
    along = np.empty(n, dtype=np.float64)
    for i in range(n):
        rx = points[i, 0] - p1[0]
        ry = points[i, 1] - p1[1]
        # With y pointing down, a positive cross product is on the walker's right (side B).
        distance[i] = (dx * ry - dy * rx) * inv_length
        along[i] = (dx * rx + dy * ry) / length2
    return distance, along


def side_of_line(points: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance of each point to the line p1->p2 and its position along it.

    Returns:
        distance_px: (n,) float64, negative on side A (left of p1->p2), positive on side B.
        along: (n,) float64, the projection onto the segment, 0 at p1 and 1 at p2.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
    a = np.ascontiguousarray(p1, dtype=np.float64).reshape(2)
    b = np.ascontiguousarray(p2, dtype=np.float64).reshape(2)
    if pts.shape[0] == 0:
        return np.zeros(0, np.float64), np.zeros(0, np.float64)
    return _side_of_line(pts, a, b)


def side_of_line_reference(points: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of `side_of_line`."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a = np.asarray(p1, dtype=np.float64).reshape(2)
    d = np.asarray(p2, dtype=np.float64).reshape(2) - a
    r = pts - a
    cross = d[0] * r[:, 1] - d[1] * r[:, 0]
    return cross / np.hypot(d[0], d[1]), (r @ d) / float(d @ d)
