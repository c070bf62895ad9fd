"""Occupancy: a running count of tracked objects per zone and class.

Not an alert rule: statistics (metrics, a status page) read `counts` after
each frame. It counts every tracked object whose anchor is inside a zone.
"""

from __future__ import annotations

__all__ = ["ZoneOccupancy"]

from collections import Counter
from collections.abc import Mapping, Sequence

from agent.config import ZoneConfig
from agent.rules.geometry import points_in_polygon
from agent.rules.shapes import WatchedObjects, ZoneShape
from agent.values.detections import Tracks


class ZoneOccupancy:
    """Counts objects per zone and class, frame by frame.

    Args:
        zones: the camera's zones.
        class_names: the detector's class names, indexed by class id.
        anchors: per class name, the box anchor (default bottom_center).
    """

    def __init__(
        self, zones: Sequence[ZoneConfig], class_names: Sequence[str], anchors: Mapping[str, str] | None = None
    ) -> None:
        self._zones = [ZoneShape(z) for z in zones]
        self._objects = WatchedObjects(class_names, 0.0, class_names, anchors)
        self._counts: dict[str, dict[str, int]] = {z.name: {} for z in zones}

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Objects inside each zone in the last frame, per class name (a copy)."""
        return {zone: dict(by_class) for zone, by_class in self._counts.items()}

    def update(self, tracks: Tracks, frame_wh: tuple[int, int]) -> None:
        watched, points = self._objects.select(tracks)
        names = self._objects.class_names
        for zone in self._zones:
            inside = points_in_polygon(points, zone.polygon_px(frame_wh))
            self._counts[zone.name] = dict(Counter(names[int(c)] for c in watched.class_id[inside]))

    def reset(self) -> None:
        self._counts = {name: {} for name in self._counts}
