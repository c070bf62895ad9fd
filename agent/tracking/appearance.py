"""What a tracked person looks like, cheaply: colour histograms of the box, and how alike two are.

The tracker uses them for one decision only: whether a track that has just
been confirmed is an object it lost a moment ago (a person who walked
behind a lamp post and came out further on), so the object keeps its id
and the rules keep what they knew about it. Motion alone cannot tell two
people apart behind the same occluder; clothing colour usually can.

A descriptor is two hue x saturation histograms (upper and lower half of
the box, the central 60% of its width so that less background is counted),
each summing to 1: `DESCRIPTOR_SIZE` float32 values. Brightness is left out
so that a shadow or a lit doorway changes it less.
"""

from __future__ import annotations

__all__ = ["DESCRIPTOR_SIZE", "appearance_descriptors", "appearance_distance", "relink_gate"]

import cv2
import numpy as np

_HUE_BINS, _SAT_BINS = 8, 4
_HALVES = 2
DESCRIPTOR_SIZE = _HALVES * _HUE_BINS * _SAT_BINS
_SIDE_TRIM = 0.2  # of the width, each side: the box edges are mostly background
_END_TRIM = 0.1  # of the height, top and bottom: hair/sky and feet/ground
_MIN_PATCH_PX = 2

# Motion gate for re-linking, in heights of the larger box: a person hidden for
# k updates may have come out up to (0.5 + 0.1 k) heights from the straight path
# between where they were last seen and where the motion model puts them now,
# capped at 2 heights; boxes more than 1.5x apart in height are different objects
# (or the same one seen so differently that its colours mean little).
_GATE_BASE_H, _GATE_PER_UPDATE_H, _GATE_MAX_H = 0.5, 0.1, 2.0
_MAX_HEIGHT_RATIO = 1.5


def appearance_descriptors(image_bgr: np.ndarray, boxes_xyxy_px: np.ndarray) -> np.ndarray:
    """(n, DESCRIPTOR_SIZE) float32 descriptors of the boxes; all zeros for a box too small to describe."""
    out = np.zeros((len(boxes_xyxy_px), _HALVES, _HUE_BINS * _SAT_BINS), np.float32)
    h, w = image_bgr.shape[:2]
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes_xyxy_px, np.float64)):
        bw, bh = x1 - x0, y1 - y0
        xa, xb = int(max(0.0, x0 + _SIDE_TRIM * bw)), int(min(w, x1 - _SIDE_TRIM * bw))
        ya, yb = int(max(0.0, y0 + _END_TRIM * bh)), int(min(h, y1 - _END_TRIM * bh))
        if xb - xa < _MIN_PATCH_PX or yb - ya < 2 * _MIN_PATCH_PX:
            continue
        hsv = cv2.cvtColor(image_bgr[ya:yb, xa:xb], cv2.COLOR_BGR2HSV)
        middle = (yb - ya) // 2
        for half, patch in enumerate((hsv[:middle], hsv[middle:])):
            hist = cv2.calcHist([patch], [0, 1], None, [_HUE_BINS, _SAT_BINS], [0, 180, 0, 256]).ravel()
            total = float(hist.sum())
            if total > 0:
                out[i, half] = hist / total
    return out.reshape(len(boxes_xyxy_px), DESCRIPTOR_SIZE)


def appearance_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) Bhattacharyya (Hellinger) distances in [0, 1] between descriptors a (n, D) and b (m, D).

    0 is the same colours, 1 nothing in common; the halves count equally.
    """
    ra = np.sqrt(np.asarray(a, np.float64)).reshape(len(a), _HALVES, -1)
    rb = np.sqrt(np.asarray(b, np.float64)).reshape(len(b), _HALVES, -1)
    overlap: np.ndarray = np.einsum("ihk,jhk->ij", ra, rb) / _HALVES
    distance: np.ndarray = np.sqrt(np.clip(1.0 - overlap, 0.0, 1.0))
    return distance


def relink_gate(lost_state: np.ndarray, lost_updates: np.ndarray, new_state: np.ndarray) -> np.ndarray:
    """(n_new, n_lost) bool: where each new track may be each lost one, by position and size.

    States are Kalman means (`cx, cy, w, h` and their velocities per update);
    a lost track's mean has been predicted `lost_updates` times since its last match.
    """
    k = lost_updates.astype(np.float64)
    seen = lost_state[:, :2] - k[:, None] * lost_state[:, 4:6]  # where it was last matched
    path = lost_state[:, :2] - seen
    length2 = np.maximum((path**2).sum(1), 1e-9)
    centre = new_state[:, :2]
    along = np.clip(((centre[:, None, :] - seen[None]) * path[None]).sum(2) / length2[None], 0.0, 1.0)
    nearest = seen[None] + along[..., None] * path[None]
    distance = np.linalg.norm(centre[:, None, :] - nearest, axis=2)
    h_lost = np.maximum(lost_state[:, 3], 1.0)[None]
    h_new = np.maximum(new_state[:, 3], 1.0)[:, None]
    taller, shorter = np.maximum(h_lost, h_new), np.minimum(h_lost, h_new)
    reach = taller * np.minimum(_GATE_BASE_H + _GATE_PER_UPDATE_H * k[None], _GATE_MAX_H)
    allowed: np.ndarray = (distance <= reach) & (taller <= _MAX_HEIGHT_RATIO * shorter)
    return allowed
