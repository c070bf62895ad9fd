"""Where the detector looks in `regions` mode: square crops of the frame around motion, or the whole frame.

`CropPlanner` turns a frame's motion boxes into a few crops (int32 (k, 4)
`x1, y1, x2, y2` frame pixels) or decides the whole frame is the better
look. Motion boxes are padded (the motion of a walker misses some of their
limbs and head), merged while they touch, and grown to squares of at least
the model's input side, so a small moving object is seen at full resolution
instead of shrunk with the whole frame; a box larger than that keeps its
size and the letterbox shrinks it. Squares that overlap are merged again
(one look instead of two at the same pixels).

The whole frame is chosen when motion covers more than `max_area_fraction`
of it, when more than `max_count` crops would be needed (each crop is one
inference), or when the crops together hold as many pixels as the frame.
"""

from __future__ import annotations

__all__ = ["CropPlanner", "CropSettings"]

from dataclasses import dataclass

import numpy as np

from agent.config.limits import REGIONS_MAX_AREA, REGIONS_MAX_COUNT, REGIONS_PAD_PX
from agent.motion.gate import merge_boxes

# Rounds of square-then-merge; two squares merged into a rectangle are squared again,
# and three rounds settle every layout of up to REGIONS_MAX_COUNT crops seen in practice.
_MERGE_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class CropSettings:
    """How crops are chosen.

    Attributes:
        min_side_px: smallest crop side, normally the model's input side (seen at scale 1).
        pad_px: frame pixels added around each motion box.
        max_area_fraction: motion covering more of the frame than this: detect the whole frame.
        max_count: more crops than this: detect the whole frame.
    """

    min_side_px: int
    pad_px: int = 32
    max_area_fraction: float = 0.4
    max_count: int = 4

    def __post_init__(self) -> None:
        if self.min_side_px < 1:
            raise ValueError(f"min_side_px must be at least 1, got {self.min_side_px}")
        REGIONS_PAD_PX.check("pad_px", self.pad_px)
        REGIONS_MAX_AREA.check("max_area_fraction", self.max_area_fraction)
        REGIONS_MAX_COUNT.check("max_count", self.max_count)


def _squares(boxes: np.ndarray, frame_wh: tuple[int, int], min_side: int) -> np.ndarray:
    """Each box grown to a square of at least `min_side` about its centre, shifted to lie in the frame."""
    w, h = frame_wh
    side = np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]), float(min_side))
    side_x = np.minimum(side, float(w))
    side_y = np.minimum(side, float(h))
    cx = (boxes[:, 0] + boxes[:, 2]) * 0.5
    cy = (boxes[:, 1] + boxes[:, 3]) * 0.5
    x1 = np.clip(cx - side_x * 0.5, 0.0, w - side_x)
    y1 = np.clip(cy - side_y * 0.5, 0.0, h - side_y)
    return np.stack([x1, y1, x1 + side_x, y1 + side_y], axis=1).astype(np.float32)


class CropPlanner:
    """Chooses crops for one camera (stateless; configured once).

    Args:
        settings: sizes and limits.
    """

    def __init__(self, settings: CropSettings) -> None:
        self.settings = settings

    def plan(self, regions_xyxy_px: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray | None:
        """The crops (int32 (k, 4), k >= 1) to detect on, or None for the whole frame."""
        s = self.settings
        w, h = frame_wh
        regions = np.asarray(regions_xyxy_px, np.float32).reshape(-1, 4)
        if len(regions) == 0:
            return None
        frame_area = float(w * h)
        padded = regions + np.array([-s.pad_px, -s.pad_px, s.pad_px, s.pad_px], np.float32)
        padded = np.clip(padded, 0.0, np.array([w, h, w, h], np.float32))
        merged = merge_boxes(padded, 0.0)
        motion_area = float(np.sum((merged[:, 2] - merged[:, 0]) * (merged[:, 3] - merged[:, 1])))
        if motion_area > s.max_area_fraction * frame_area:
            return None
        crops = _squares(merged, frame_wh, s.min_side_px)
        for _ in range(_MERGE_ROUNDS):
            joined = merge_boxes(crops, 0.0)
            if len(joined) == len(crops):
                break
            crops = _squares(joined, frame_wh, s.min_side_px)
        if len(crops) > s.max_count:
            return None
        crop_area = float(np.sum((crops[:, 2] - crops[:, 0]) * (crops[:, 3] - crops[:, 1])))
        if crop_area >= frame_area:
            return None
        out = np.round(crops).astype(np.int32)
        out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1)
        return out
