"""Geometry on all tracks at once: anchor points and point-in-polygon.

Zones arrive from the config in normalised (0-1) or pixel coordinates and
are turned into pixel polygons once per frame size. The point-in-polygon test
is a Numba kernel (even-odd ray casting, GIL released) with a NumPy
reference beside it; tests keep the two in agreement.
"""

from __future__ import annotations

__all__ = [
    "anchor_points",
    "points_in_polygon",
    "points_in_polygon_reference",
    "polygon_to_pixels",
]

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numba import njit

Anchor = Literal["bottom_center", "center", "top_center"]


def polygon_to_pixels(
    points: Sequence[tuple[float, float]], units: str, frame_wh: tuple[int, int]
) -> np.ndarray:
    """Return an (n, 2) float64 polygon in frame pixels."""
    poly = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if units == "normalized":
        poly = poly * np.array(frame_wh, dtype=np.float64)
    return poly


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


@njit(cache=True, nogil=True)
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
    return (crossings.sum(axis=1) % 2) == 1
