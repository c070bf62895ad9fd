"""Point-in-polygon: the Numba kernel agrees with its NumPy reference and with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.rules.geometry import (
    anchor_points,
    points_in_polygon,
    points_in_polygon_reference,
    polygon_to_pixels,
)


def test_square_inside_and_outside() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=np.float64)
    pts = np.array([[5, 5], [15, 5], [-1, 5], [5, 11], [9.9, 0.1]])
    assert points_in_polygon(pts, square).tolist() == [True, False, False, False, True]


@pytest.mark.parametrize("seed", range(5))
def test_kernel_matches_reference_and_opencv_on_random_polygons(seed: int) -> None:
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = rng.uniform(20, 100, 9)
    polygon = np.stack([200 + radii * np.cos(angles), 200 + radii * np.sin(angles)], axis=1)
    points = rng.uniform(80, 320, (2000, 2))
    fast = points_in_polygon(points, polygon)
    assert np.array_equal(fast, points_in_polygon_reference(points, polygon))
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    distance = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in points])
    clear = np.abs(distance) > 1e-3  # on the boundary the two conventions may differ
    assert np.array_equal(fast[clear], distance[clear] > 0)


def test_empty_inputs() -> None:
    tri = np.array([[0, 0], [1, 0], [0, 1]], dtype=np.float64)
    assert points_in_polygon(np.zeros((0, 2)), tri).shape == (0,)
    assert points_in_polygon_reference(np.zeros((0, 2)), tri).shape == (0,)


def test_anchor_is_bottom_centre_by_default() -> None:
    boxes = np.array([[10, 20, 30, 60]], dtype=np.float32)
    assert anchor_points(boxes).tolist() == [[20.0, 60.0]]
    assert anchor_points(boxes, "center").tolist() == [[20.0, 40.0]]


def test_normalised_polygon_scales_to_frame() -> None:
    poly = polygon_to_pixels([(0.5, 0.5), (1.0, 0.0), (0.0, 1.0)], "normalized", (640, 480))
    assert poly.tolist() == [[320, 240], [640, 0], [0, 480]]
    assert polygon_to_pixels([(5, 6), (7, 8), (9, 9)], "pixels", (640, 480)).tolist() == [[5, 6], [7, 8], [9, 9]]
