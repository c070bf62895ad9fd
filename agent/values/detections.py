"""Columnar per-frame values: detector output and tracker output.

Both hold parallel NumPy columns (one row per object) with boxes in pixels
of the original frame, `x1, y1, x2, y2`. Shapes are checked on construction;
selecting rows returns a new value and never mutates the caller's arrays.
"""

from __future__ import annotations

__all__ = ["Detections", "Tracks"]

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def _check_columns(n: int, **columns: np.ndarray) -> None:
    for name, col in columns.items():
        if col.shape[0] != n:
            raise ValueError(f"{name} has {col.shape[0]} rows, expected {n} (one per box)")


def _as_boxes(box_xyxy_px: npt.ArrayLike) -> np.ndarray:
    boxes = np.asarray(box_xyxy_px, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros((0, 4), np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"box_xyxy_px must have shape (n, 4), got {boxes.shape}")
    return boxes


@dataclass(frozen=True, slots=True)
class Detections:
    """Objects found in one frame.

    Attributes:
        box_xyxy_px: (n, 4) float32, original-frame pixels.
        score: (n,) float32 in [0, 1].
        class_id: (n,) int32, index into the model's class names.
    """

    box_xyxy_px: np.ndarray
    score: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        boxes = _as_boxes(self.box_xyxy_px)
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        class_id = np.asarray(self.class_id, dtype=np.int32).reshape(-1)
        _check_columns(boxes.shape[0], score=score, class_id=class_id)
        object.__setattr__(self, "box_xyxy_px", boxes)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "class_id", class_id)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return int(self.box_xyxy_px.shape[0])

    def select(self, rows: npt.ArrayLike) -> Detections:
        """Return the rows picked by a boolean mask or an index array."""
        idx = np.asarray(rows)
        return Detections(self.box_xyxy_px[idx], self.score[idx], self.class_id[idx])


@dataclass(frozen=True, slots=True)
class Tracks:
    """Confirmed tracked objects in one frame.

    Attributes:
        box_xyxy_px: (n, 4) float32, original-frame pixels.
        score: (n,) float32, score of the detection matched this frame
            (or the last matched one while the track is coasting).
        class_id: (n,) int32.
        track_id: (n,) int64, stable across frames, never reused by one tracker.
    """

    box_xyxy_px: np.ndarray
    score: np.ndarray
    class_id: np.ndarray
    track_id: np.ndarray

    def __post_init__(self) -> None:
        boxes = _as_boxes(self.box_xyxy_px)
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        class_id = np.asarray(self.class_id, dtype=np.int32).reshape(-1)
        track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        _check_columns(boxes.shape[0], score=score, class_id=class_id, track_id=track_id)
        object.__setattr__(self, "box_xyxy_px", boxes)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "track_id", track_id)

    @classmethod
    def empty(cls) -> Tracks:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return int(self.box_xyxy_px.shape[0])

    def select(self, rows: npt.ArrayLike) -> Tracks:
        """Return the rows picked by a boolean mask or an index array."""
        idx = np.asarray(rows)
        return Tracks(self.box_xyxy_px[idx], self.score[idx], self.class_id[idx], self.track_id[idx])
