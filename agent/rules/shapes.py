"""What a rule watches, in pixels: zone polygons, directed lines and the objects that count.

Config shapes are in normalised or pixel units; these classes turn them into
pixel arrays once per frame size (a camera's resolution rarely changes) and
pick, per frame, the tracks a rule counts with their anchor points.
"""

from __future__ import annotations

__all__ = ["LineShape", "WatchedObjects", "ZoneShape"]

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from agent.config import LineConfig, ZoneConfig
from agent.logs import log_event
from agent.rules.geometry import ANCHOR_CODES, anchor_points_by_class, polygon_to_pixels
from agent.values.detections import Tracks

_log = logging.getLogger(__name__)


def _warn_if_outside(kind: str, name: str, pts: np.ndarray, frame_wh: tuple[int, int]) -> None:
    w, h = frame_wh
    if np.any(pts[:, 0] > w) or np.any(pts[:, 1] > h):
        # Pixel shapes cannot be checked against a frame size at config time.
        log_event(_log, "shape_outside_frame", logging.WARNING, kind=kind, name=name, frame_w=w, frame_h=h)


class ZoneShape:
    """A zone's polygon in pixels for the current frame size."""

    def __init__(self, zone: ZoneConfig) -> None:
        self.name = zone.name
        self._zone = zone
        self._frame_wh: tuple[int, int] | None = None
        self._polygon = np.zeros((0, 2), np.float64)

    def polygon_px(self, frame_wh: tuple[int, int]) -> np.ndarray:
        if self._frame_wh != frame_wh:
            self._polygon = polygon_to_pixels(self._zone.points, self._zone.units, frame_wh)
            self._frame_wh = frame_wh
            _warn_if_outside("zone", self.name, self._polygon, frame_wh)
        return self._polygon


class LineShape:
    """A line's end points in pixels for the current frame size."""

    def __init__(self, line: LineConfig) -> None:
        self.name = line.name
        self._line = line
        self._frame_wh: tuple[int, int] | None = None
        self._ends = np.zeros((2, 2), np.float64)

    def ends_px(self, frame_wh: tuple[int, int]) -> np.ndarray:
        """(2, 2) float64: p1 and p2 in pixels."""
        if self._frame_wh != frame_wh:
            self._ends = polygon_to_pixels(list(self._line.points), self._line.units, frame_wh)
            self._frame_wh = frame_wh
            _warn_if_outside("line", self.name, self._ends, frame_wh)
        return self._ends


class WatchedObjects:
    """Which tracks a rule counts (class and score) and where each one stands.

    Args:
        classes: class names the rule counts.
        min_score: lowest detection score that counts.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the anchor (default bottom_center).
    """

    def __init__(
        self,
        classes: Sequence[str],
        min_score: float,
        class_names: Sequence[str],
        anchors: Mapping[str, str] | None = None,
    ) -> None:
        wanted = set(classes)
        self.class_names = list(class_names)
        # A lookup table by class id: indexing is ~20x cheaper than np.isin per frame.
        self._watched = np.array([n in wanted for n in class_names] or [False], dtype=np.bool_)
        self._min_score = min_score
        anchors = anchors or {}
        self._anchor_codes = np.array(
            [ANCHOR_CODES[anchors.get(n, "bottom_center")] for n in class_names] or [0], dtype=np.int8
        )

    def select(self, tracks: Tracks) -> tuple[Tracks, np.ndarray]:
        """Return the counted tracks and their (n, 2) anchor points in pixels."""
        mask = self._watched[tracks.class_id] & (tracks.score >= self._min_score)
        kept = tracks.select(mask)
        return kept, anchor_points_by_class(kept.box_xyxy_px, kept.class_id, self._anchor_codes)
