"""Numba kernels agree with their references; the assignment is optimal."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from agent.detection.box_ops import iou_matrix
from agent.detection.box_ops import iou_matrix_numpy as iou_matrix_reference
from agent.tracking.assignment import (
    linear_assignment,
    linear_assignment_reference,
    match_by_iou,
)


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 200, (n, 2))
    return np.hstack([xy, xy + rng.uniform(0, 60, (n, 2))]).astype(np.float32)


@pytest.mark.parametrize(("n", "m"), [(0, 3), (3, 0), (1, 1), (7, 12), (25, 18)])
def test_iou_kernel_matches_reference(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 100 + m)
    a, b = _random_boxes(rng, n), _random_boxes(rng, m)
    ca, cb = rng.integers(0, 2, n), rng.integers(0, 2, m)
    np.testing.assert_allclose(iou_matrix(a, b), iou_matrix_reference(a, b), atol=1e-6)
    np.testing.assert_allclose(iou_matrix(a, b, ca, cb), iou_matrix_reference(a, b, ca, cb), atol=1e-6)


def test_iou_known_values() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 1 / 3, 0.0, 0.0], atol=1e-6)
    assert iou_matrix(a, b[:1], np.array([0]), np.array([1]))[0, 0] == 0.0


def _brute_force_cost(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
    return _brute_force_cost(cost.T)


@pytest.mark.parametrize("seed", range(12))
def test_assignment_is_optimal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    cost = rng.random((n, m))
    pairs = linear_assignment(cost)
    assert len(pairs) == min(n, m)
    assert len(set(pairs[:, 0])) == len(pairs) and len(set(pairs[:, 1])) == len(pairs)
    assert cost[pairs[:, 0], pairs[:, 1]].sum() == pytest.approx(_brute_force_cost(cost))
    np.testing.assert_array_equal(pairs, linear_assignment_reference(cost))


@pytest.mark.parametrize(("n", "m"), [(30, 30), (40, 25), (10, 60)])
def test_assignment_matches_scipy_on_large_matrices(n: int, m: int) -> None:
    cost = np.random.default_rng(n + m).random((n, m))
    pairs = linear_assignment(cost)
    rows, cols = linear_sum_assignment(cost)
    assert cost[pairs[:, 0], pairs[:, 1]].sum() == pytest.approx(cost[rows, cols].sum())


def test_match_by_iou_respects_threshold_and_prefers_best() -> None:
    iou = np.array([[0.9, 0.6, 0.0], [0.7, 0.0, 0.0], [0.0, 0.0, 0.1]], np.float32)
    pairs, rows, cols = match_by_iou(iou, 0.3)
    # Greedy would give row 0 its best (col 0) and leave row 1 without a match.
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (1, 0)]
    assert rows.tolist() == [2] and cols.tolist() == [2]
