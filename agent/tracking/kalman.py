"""Constant-velocity Kalman filter for boxes, vectorised over many tracks.

State per track: `cx, cy, w, h` (centre and size, pixels) and their
velocities per update step. Noise scales with the box size, so a near person
(big box) may move more pixels per step than a far one.
"""

from __future__ import annotations

__all__ = ["BoxKalman"]

import numpy as np

_NDIM = 4


def _xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    b = boxes.astype(np.float64)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


class BoxKalman:
    """Predict and correct many box tracks at once.

    Args:
        position_noise: std of position/size per step, as a share of box size.
            1/20 is the value ByteTrack and SORT-family trackers settled on.
        velocity_noise: std of velocity change per step, as a share of box size.
    """

    def __init__(self, position_noise: float = 1.0 / 20, velocity_noise: float = 1.0 / 160) -> None:
        self._pos = position_noise
        self._vel = velocity_noise
        self._motion = np.eye(2 * _NDIM)
        self._motion[:_NDIM, _NDIM:] = np.eye(_NDIM)

    @staticmethod
    def _size_scale(wh: np.ndarray) -> np.ndarray:
        """(n, 4) scale per state component: w for x and width, h for y and height."""
        w = np.maximum(wh[:, 0], 1.0)
        h = np.maximum(wh[:, 1], 1.0)
        return np.stack([w, h, w, h], 1)

    def initiate(self, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from (n, 4) boxes: means (n, 8), covariances (n, 8, 8)."""
        z = _xyxy_to_cxcywh(boxes_xyxy)
        mean = np.hstack([z, np.zeros_like(z)])
        scale = self._size_scale(z[:, 2:])
        # Unknown velocity starts with a wide prior, so the first matches set it.
        std = np.hstack([2 * self._pos * scale, 10 * self._vel * scale])
        cov = np.zeros((len(z), 8, 8))
        idx = np.arange(8)
        cov[:, idx, idx] = std**2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead for every track."""
        scale = self._size_scale(mean[:, 2:4])
        q = np.hstack([self._pos * scale, self._vel * scale]) ** 2
        f = self._motion
        mean = mean @ f.T
        cov = f @ cov @ f.T
        idx = np.arange(8)
        cov[:, idx, idx] += q
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track with its matched box (rows aligned)."""
        z = _xyxy_to_cxcywh(boxes_xyxy)
        r = (self._pos * self._size_scale(mean[:, 2:4])) ** 2
        s = cov[:, :_NDIM, :_NDIM].copy()
        idx = np.arange(_NDIM)
        s[:, idx, idx] += r
        ph = cov[:, :, :_NDIM]  # P H^T with H = [I 0]
        gain = np.linalg.solve(s, ph.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = z - mean[:, :_NDIM]
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        cov = cov - gain @ ph.transpose(0, 2, 1)
        return mean, cov

    @staticmethod
    def to_xyxy(mean: np.ndarray) -> np.ndarray:
        """(n, 4) float32 boxes from state means."""
        c, wh = mean[:, :2], np.maximum(mean[:, 2:4], 1.0)
        return np.hstack([c - wh / 2, c + wh / 2]).astype(np.float32)
