"""Multi-object tracking: ByteTrack-style tracker, Kalman filter, IoU matching."""

from __future__ import annotations

__all__ = [
    "BoxKalman",
    "ByteTracker",
    "TrackerSettings",
    "linear_assignment",
    "match_by_iou",
]

from agent.tracking.assignment import linear_assignment, match_by_iou
from agent.tracking.bytetrack import ByteTracker, TrackerSettings
from agent.tracking.kalman import BoxKalman
