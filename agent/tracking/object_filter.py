"""Which tracked objects count: size, shape, score, place and persistence.

Applied between the tracker and the rules: boxes too small or too large for
the scene, of an implausible shape, below a class's score, or standing in an
excluded polygon (judged by the bottom-centre point, where the object
touches the ground) are dropped; the rest must pass for `confirm_frames`
updates before a track counts, so a one-frame false positive never reaches
the rules. The updates the tracker itself waited before reporting a track
(`seen_before_report`) count towards them: both confirm the same thing, and
stacking them would hide every object for its first frames.
"""

from __future__ import annotations

__all__ = ["ObjectFilter", "ObjectFilterSettings"]

from dataclasses import dataclass

import numpy as np

from agent.config.limits import ASPECT_RATIO, CONFIRM_FRAMES, MAX_AREA_FRACTION, MIN_AREA_FRACTION, SCORE
from agent.rules.geometry import anchor_points, points_in_polygon
from agent.values.detections import Tracks

Polygon = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class ObjectFilterSettings:
    """Filter limits; None means no limit.

    Attributes:
        min_area_px / max_area_px: box area bounds in pixels.
        min_area_fraction / max_area_fraction: box area bounds as a share of the frame.
        aspect_ratio_range: (min, max) of width / height (a standing person is ~0.3-0.7).
        min_score_by_class: ((class_id, min_score), ...); classes not listed pass.
        exclusion_polygons_px: polygons in pixels; a box whose bottom-centre lies
            inside one is dropped.
        confirm_frames: updates a track must pass before it is reported.
        seen_before_report: matched updates a track has had before the tracker
            first reports it (its `min_hits` - 1); counted towards `confirm_frames`.
        forget_after_updates: updates after which an absent track's count is forgotten.
    """

    min_area_px: float | None = None
    max_area_px: float | None = None
    min_area_fraction: float | None = None
    max_area_fraction: float | None = None
    aspect_ratio_range: tuple[float, float] | None = None
    min_score_by_class: tuple[tuple[int, float], ...] = ()
    exclusion_polygons_px: tuple[Polygon, ...] = ()
    confirm_frames: int = 3
    seen_before_report: int = 0
    forget_after_updates: int = 300

    def __post_init__(self) -> None:
        # The same bounds as the `filters` config section (agent.config.limits): what validates, runs.
        CONFIRM_FRAMES.check("confirm_frames", self.confirm_frames)
        if self.seen_before_report < 0:
            raise ValueError(f"seen_before_report must be >= 0, got {self.seen_before_report}")
        if self.min_area_fraction is not None:
            MIN_AREA_FRACTION.check("min_area_fraction", self.min_area_fraction)
        if self.max_area_fraction is not None:
            MAX_AREA_FRACTION.check("max_area_fraction", self.max_area_fraction)
        if self.aspect_ratio_range is not None:
            low, high = self.aspect_ratio_range
            ASPECT_RATIO.check("aspect_ratio_range min", low)
            ASPECT_RATIO.check("aspect_ratio_range max", high)
            if low > high:
                raise ValueError(f"aspect_ratio_range must be min then max, got {self.aspect_ratio_range}")
        for _, score in self.min_score_by_class:
            SCORE.check("min_score", score)
        for polygon in self.exclusion_polygons_px:
            if len(polygon) < 3:
                raise ValueError(f"an exclusion polygon needs at least 3 points, got {len(polygon)}")


class ObjectFilter:
    """Filter one camera's tracks frame by frame.

    Args:
        settings: the limits.
        frame_wh: frame size, for the area fractions.
    """

    def __init__(self, settings: ObjectFilterSettings, frame_wh: tuple[int, int]) -> None:
        self.settings = settings
        self._frame_area = float(frame_wh[0] * frame_wh[1])
        self._min_score = dict(settings.min_score_by_class)
        self._polygons = [np.asarray(p, np.float64) for p in settings.exclusion_polygons_px]
        self._passes: dict[int, int] = {}
        self._last_update: dict[int, int] = {}
        self._update = 0

    def reset(self) -> None:
        self._passes.clear()
        self._last_update.clear()

    def accepted(self, tracks: Tracks) -> np.ndarray:
        """(n,) bool: rows that pass size, shape, score and place (no persistence)."""
        s = self.settings
        b = tracks.box_xyxy_px.astype(np.float64)
        w, h = np.maximum(b[:, 2] - b[:, 0], 0), np.maximum(b[:, 3] - b[:, 1], 0)
        area = w * h
        ok = np.ones(len(tracks), bool)
        for bound, value, is_min in (
            (s.min_area_px, area, True),
            (s.max_area_px, area, False),
            (s.min_area_fraction, area / self._frame_area, True),
            (s.max_area_fraction, area / self._frame_area, False),
        ):
            if bound is not None:
                ok &= value >= bound if is_min else value <= bound
        if s.aspect_ratio_range is not None:
            ratio = w / np.maximum(h, 1e-6)
            ok &= (ratio >= s.aspect_ratio_range[0]) & (ratio <= s.aspect_ratio_range[1])
        if self._min_score:
            floor = np.array([self._min_score.get(int(c), 0.0) for c in tracks.class_id])
            ok &= tracks.score >= floor
        anchors = anchor_points(b)
        for polygon in self._polygons:
            ok &= ~points_in_polygon(anchors, polygon)
        return ok

    def update(self, tracks: Tracks) -> Tracks:
        """Tracks that pass every limit and have done so for `confirm_frames` updates."""
        self._update += 1
        ok = self.accepted(tracks)
        confirmed = np.zeros(len(tracks), bool)
        for row, (tid, passed) in enumerate(zip(tracks.track_id.tolist(), ok.tolist(), strict=False)):
            if passed:
                self._passes[tid] = self._passes.get(tid, self.settings.seen_before_report) + 1
                self._last_update[tid] = self._update
                confirmed[row] = self._passes[tid] >= self.settings.confirm_frames
        self._forget_stale()
        return tracks.select(confirmed)

    def _forget_stale(self) -> None:
        horizon = self._update - self.settings.forget_after_updates
        for tid in [t for t, last in self._last_update.items() if last < horizon]:
            del self._last_update[tid]
            del self._passes[tid]
