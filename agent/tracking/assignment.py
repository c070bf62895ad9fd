"""Optimal one-to-one matching for the tracker (IoU comes from `agent.detection.box_ops`).

A Numba kernel (private, `agent.kernels`) behind typed wrappers; the
reference runs the same function in the interpreter, for the tests and the
benchmark. The assignment is an exact linear assignment (shortest augmenting
path with dual potentials, O(n^2 m)): for the 10-100 objects of a camera it
is fast in Numba and, unlike greedy matching, never steals a box from the
track that fits it best.
"""

from __future__ import annotations

__all__ = [
    "linear_assignment",
    "linear_assignment_reference",
    "match_by_iou",
]

import numpy as np

from agent.kernels import kernel

# Cost of a forbidden pair. Valid costs lie in [0, 1], so any assignment using
# fewer forbidden pairs is cheaper: the solver first maximises the number of
# allowed matches, then minimises their total cost.
_FORBIDDEN = 1.0e6


def _assign(cost: np.ndarray) -> np.ndarray:
    """Row -> column (or -1) minimising total cost; requires rows <= columns."""
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: 1-based row holding column j; 0 free
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, np.bool_)
        while True:
            used[j0] = True
            i0 = owner[j0]
            delta = np.inf
            j1 = 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if reduced < minv[j]:
                        minv[j] = reduced
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0 != 0:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    row_to_col = np.full(n, -1, np.int64)
    for j in range(1, m + 1):
        if owner[j] != 0:
            row_to_col[owner[j] - 1] = j - 1
    return row_to_col


# The compiled solver; `linear_assignment_reference` runs `_assign` itself in the interpreter.
_assign_kernel = kernel("i8[:](f8[:, ::1])")(_assign)


def _pairs(row_to_col: np.ndarray, transposed: bool) -> np.ndarray:
    rows = np.flatnonzero(row_to_col >= 0)
    pairs = np.stack([rows, row_to_col[rows]], 1).astype(np.int64)
    return pairs[:, ::-1].copy() if transposed else pairs


def linear_assignment(cost: np.ndarray) -> np.ndarray:
    """Optimal one-to-one assignment of a rectangular cost matrix.

    Returns (k, 2) int64 (row, column) pairs, k = min(n, m), sorted by row
    when n <= m (by column otherwise).
    """
    c = np.asarray(cost, np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be 2-D, got shape {c.shape}")
    if c.size == 0:
        return np.zeros((0, 2), np.int64)
    transposed = c.shape[0] > c.shape[1]
    c = np.ascontiguousarray(c.T if transposed else c)
    return _pairs(_assign_kernel(c), transposed)


def linear_assignment_reference(cost: np.ndarray) -> np.ndarray:
    """The same algorithm run by the Python interpreter (for agreement tests)."""
    c = np.asarray(cost, np.float64)
    if c.size == 0:
        return np.zeros((0, 2), np.int64)
    transposed = c.shape[0] > c.shape[1]
    c = np.ascontiguousarray(c.T if transposed else c)
    return _pairs(_assign(c), transposed)


def match_by_iou(iou: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match rows to columns maximising IoU among pairs with IoU >= min_iou.

    Returns (matches (k, 2), unmatched rows, unmatched columns).
    """
    n, m = iou.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n), np.arange(m)
    allowed = iou >= min_iou
    cost = np.where(allowed, 1.0 - iou.astype(np.float64), _FORBIDDEN)
    pairs = linear_assignment(cost)
    pairs = pairs[allowed[pairs[:, 0], pairs[:, 1]]]
    # Boolean masks, not np.setdiff1d: setdiff sorts and costs ~50 us a call at these sizes.
    free_rows = np.ones(n, np.bool_)
    free_rows[pairs[:, 0]] = False
    free_cols = np.ones(m, np.bool_)
    free_cols[pairs[:, 1]] = False
    return pairs, np.flatnonzero(free_rows), np.flatnonzero(free_cols)
