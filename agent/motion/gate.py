"""Motion gate: decides which frames the detector sees, and finds where in them something moved.

A downscaled, blurred luma image is compared with a running-average
background; pixels that differ by more than a threshold, minus the masked
polygons, are grown into blobs whose bounding boxes are the motion regions,
in original-frame pixels. Counters say how many frames were inspected and
how many had motion, so the share of frames that ran inference is known.

In `always` mode the gate is off: nothing reads its result, so no luma or
background is computed (about half a millisecond a frame saved) and every
frame is reported as moving.

The bounds its settings check are the ones the `motion` config section
declares (`agent.config.limits`), so a value that validates is one the gate
runs.
"""

from __future__ import annotations

__all__ = [
    "MotionCounters",
    "MotionGate",
    "MotionMode",
    "MotionResult",
    "MotionSettings",
    "merge_boxes",
]

from dataclasses import dataclass

import cv2
import numpy as np

from agent.config.limits import (
    MIN_REGION_FRACTION,
    MOTION_FRAME_HEIGHT_PX,
    MOTION_LEARNING_RATE,
    MOTION_MODES,
    PIXEL_THRESHOLD,
    Bound,
    MotionMode,
)

# The wiring lowers the configured height to the frame's own for a frame shorter than
# it, so here only the upper end of the configured bound applies.
_ANALYSED_HEIGHT_PX = Bound(1, MOTION_FRAME_HEIGHT_PX.high)


@dataclass(frozen=True, slots=True)
class MotionSettings:
    """How motion is found.

    Attributes:
        mode: `always` runs the detector on every frame; `on_motion` and
            `regions` only on frames with motion. In `regions` mode the
            pipeline detects on crops around the regions reported in
            `MotionResult` (`agent.detection.crops`); otherwise they are for
            whoever draws them.
        frame_height_px: height of the analysed image (at most the frame's own).
            180 px keeps a person at 20 m a few pixels tall while costing well
            under a millisecond.
        learning_rate: weight of each new frame in the background average;
            0.02 absorbs a lighting change in ~2 s at 25 fps but keeps a
            person who pauses for a moment in the foreground.
        pixel_threshold: luma difference (1-254) above which a pixel counts as
            changed; 20 sits above compression and sensor noise after the blur.
        min_region_fraction: blobs smaller than this share of the frame are
            noise (leaves, rain, a few flickering pixels), not objects.
        merge_gap_px: regions closer than this (original pixels) are merged,
            because one walking person often splits into head, torso and legs.
        warmup_frames: frames used to build the background; they report
            motion over the whole frame so nothing is missed at start.
        mask_polygons_px: polygons (x, y in original pixels) where motion is
            ignored: a clock, a tree, a road outside the site.
    """

    mode: MotionMode = "on_motion"
    frame_height_px: int = 180
    learning_rate: float = 0.02
    pixel_threshold: int = 20
    min_region_fraction: float = 0.0005
    merge_gap_px: int = 16
    warmup_frames: int = 5
    mask_polygons_px: tuple[tuple[tuple[float, float], ...], ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MOTION_MODES:
            raise ValueError(f"mode must be one of {', '.join(MOTION_MODES)}, got {self.mode!r}")
        MOTION_LEARNING_RATE.check("learning_rate", self.learning_rate)
        _ANALYSED_HEIGHT_PX.check("frame_height_px", self.frame_height_px)
        PIXEL_THRESHOLD.check("pixel_threshold", self.pixel_threshold)
        MIN_REGION_FRACTION.check("min_region_fraction", self.min_region_fraction)


@dataclass(frozen=True, slots=True)
class MotionResult:
    """Motion in one frame.

    Attributes:
        has_motion: any region found (always True during warm-up).
        regions_xyxy_px: (n, 4) float32 boxes in original-frame pixels.
        motion_fraction: share of the unmasked analysed pixels that changed.
    """

    has_motion: bool
    regions_xyxy_px: np.ndarray
    motion_fraction: float


@dataclass(frozen=True, slots=True)
class MotionCounters:
    """Frames inspected, frames with motion, frames the detector should run on."""

    frames_inspected: int
    frames_with_motion: int
    frames_detected: int

    @property
    def detected_fraction(self) -> float:
        return self.frames_detected / self.frames_inspected if self.frames_inspected else 0.0


def merge_boxes(boxes_xyxy: np.ndarray, gap_px: float) -> np.ndarray:
    """Merge boxes that overlap or lie within gap_px of each other, until stable."""
    boxes = [list(map(float, b)) for b in np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)]
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(len(boxes) - 1, i, -1):
                a, b = boxes[i], boxes[j]
                if a[0] - gap_px <= b[2] and b[0] - gap_px <= a[2] and a[1] - gap_px <= b[3] and b[1] - gap_px <= a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
    return np.asarray(boxes, np.float32).reshape(-1, 4)


@dataclass(frozen=True, slots=True)
class _AnalysisGrid:
    """The downscaled image motion is computed on, for one frame size.

    Attributes:
        size_wh: the original frame size it was built for.
        small_wh: the analysed image size.
        scale_xy: original pixels per analysed pixel, per axis.
        keep_mask: (h, w) uint8 of the analysed size, 255 outside the masks, 0 inside.
        keep_pixels: pixels outside the masks (at least 1, the divisor of the motion fraction).
    """

    size_wh: tuple[int, int]
    small_wh: tuple[int, int]
    scale_xy: tuple[float, float]
    keep_mask: np.ndarray
    keep_pixels: int


class MotionGate:
    """Find motion frame by frame for one camera (not thread-safe; one per camera).

    Args:
        settings: thresholds, mode and masks.
    """

    def __init__(self, settings: MotionSettings | None = None) -> None:
        self.settings = settings or MotionSettings()
        self._grid: _AnalysisGrid | None = None
        self._background: np.ndarray | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self._seen = 0
        self._inspected = self._with_motion = self._detected = 0

    def reset(self) -> None:
        """Forget the background and counters (after a reconnect or a scene change)."""
        self._grid = None
        self._background = None
        self._seen = 0
        self._inspected = self._with_motion = self._detected = 0

    @property
    def counters(self) -> MotionCounters:
        return MotionCounters(self._inspected, self._with_motion, self._detected)

    def should_detect(self, result: MotionResult) -> bool:
        """Whether the detector runs on this frame under the configured mode."""
        return self.settings.mode == "always" or result.has_motion

    def update(self, image_bgr: np.ndarray) -> MotionResult:
        """Compare one frame with the background, then fold it into the background."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"image_bgr must be (H, W, 3), got {image_bgr.shape}")
        h, w = image_bgr.shape[:2]
        if self.settings.mode == "always":
            result = MotionResult(True, np.array([[0, 0, w, h]], np.float32), 1.0)
            self._count(result)
            return result
        grid = self._grid
        if grid is None or grid.size_wh != (w, h):
            grid = self._grid = self._new_grid(w, h)
        gray = self._luma(image_bgr, grid)
        background = self._background
        if background is None:
            self._background = background = gray.astype(np.float32)
        self._seen += 1
        if self._seen <= self.settings.warmup_frames:
            cv2.accumulateWeighted(gray, background, 0.5)
            result = MotionResult(True, np.array([[0, 0, w, h]], np.float32), 1.0)
        else:
            result = self._compare(gray, background, grid)
            cv2.accumulateWeighted(gray, background, self.settings.learning_rate)
        self._count(result)
        return result

    def _new_grid(self, w: int, h: int) -> _AnalysisGrid:
        """The grid for a new frame size; the old background no longer fits it, so warm up again."""
        s = self.settings
        small_h = min(s.frame_height_px, h)
        small_w = max(1, round(w * small_h / h))
        scale_xy = (w / small_w, h / small_h)
        self._background = None
        self._seen = 0
        keep = np.full((small_h, small_w), 255, np.uint8)
        for polygon in s.mask_polygons_px:
            pts = np.asarray(polygon, np.float32).reshape(-1, 2) / np.asarray(scale_xy, np.float32)
            cv2.fillPoly(keep, [np.round(pts).astype(np.int32)], 0)
        keep_pixels = max(1, int(cv2.countNonZero(keep)))
        return _AnalysisGrid((w, h), (small_w, small_h), scale_xy, keep, keep_pixels)

    def _luma(self, image_bgr: np.ndarray, grid: _AnalysisGrid) -> np.ndarray:
        small = cv2.resize(image_bgr, grid.small_wh, interpolation=cv2.INTER_LINEAR)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        # The blur removes single-pixel sensor and compression noise before the diff.
        return cv2.GaussianBlur(gray, (5, 5), 0)

    def _compare(self, gray: np.ndarray, background: np.ndarray, grid: _AnalysisGrid) -> MotionResult:
        s = self.settings
        diff = cv2.absdiff(gray, cv2.convertScaleAbs(background))
        _, changed = cv2.threshold(diff, s.pixel_threshold, 255, cv2.THRESH_BINARY)
        changed = cv2.bitwise_and(changed, grid.keep_mask)
        fraction = float(cv2.countNonZero(changed)) / grid.keep_pixels
        # Dilation joins the pieces of one moving body before contours are taken.
        grown = cv2.dilate(changed, self._kernel, iterations=2)
        contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = s.min_region_fraction * gray.shape[0] * gray.shape[1]
        sx, sy = grid.scale_xy
        boxes = []
        for contour in contours:
            x, y, bw, bh = cv2.boundingRect(contour)
            if bw * bh >= min_area:
                boxes.append((x * sx, y * sy, (x + bw) * sx, (y + bh) * sy))
        regions = merge_boxes(np.asarray(boxes, np.float32), s.merge_gap_px)
        return MotionResult(len(regions) > 0, regions, fraction)

    def _count(self, result: MotionResult) -> None:
        self._inspected += 1
        self._with_motion += int(result.has_motion)
        self._detected += int(self.should_detect(result))
