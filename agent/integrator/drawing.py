"""Drawing a camera's config and what the pipeline saw onto a picture.

Pure OpenCV drawing on a canvas the caller owns (every function draws in
place, so pass a copy of a frame you still need). Shapes are turned into
frame pixels once by `scene_shapes`, so normalised zones draw correctly at
any camera resolution. Colours are BGR.

Line sides follow `agent.rules.geometry`: walking from p1 to p2 as drawn,
side A is on the left and side B on the right (x right, y down).
"""

from __future__ import annotations

__all__ = [
    "ALERT_BGR",
    "BANNER_BGR",
    "MASK_BGR",
    "MOTION_BGR",
    "NamedLine",
    "NamedPolygon",
    "SceneShapes",
    "draw_banners",
    "draw_label",
    "draw_line",
    "draw_mask",
    "draw_motion_regions",
    "draw_tracks",
    "draw_trails",
    "draw_zone",
    "line_side_points",
    "palette_bgr",
    "scene_shapes",
    "track_colour",
]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from agent.config import CameraConfig, LineCrossingRuleConfig, WrongWayRuleConfig
from agent.rules.geometry import polygon_to_pixels
from agent.values.detections import Tracks

BGR = tuple[int, int, int]

# Distinct, saturated colours that stay readable on grey street scenes. Red is
# kept out of the palette: it means "alerting" in annotated replays.
_PALETTE: tuple[BGR, ...] = (
    (255, 160, 0),
    (0, 200, 0),
    (255, 0, 255),
    (0, 215, 255),
    (255, 255, 0),
    (0, 128, 255),
    (180, 105, 255),
)
ALERT_BGR: BGR = (0, 0, 255)
MASK_BGR: BGR = (96, 96, 96)
MOTION_BGR: BGR = (0, 255, 255)
BANNER_BGR: Mapping[str, BGR] = {"start": (0, 0, 200), "update": (0, 110, 230), "end": (0, 140, 0)}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_ZONE_FILL_ALPHA = 0.25
_MASK_FILL_ALPHA = 0.55
_SIDE_LABEL_OFFSET_PX = 22.0


def palette_bgr(index: int) -> BGR:
    """The index-th drawing colour (cycles)."""
    return _PALETTE[index % len(_PALETTE)]


@dataclass(frozen=True, slots=True)
class NamedPolygon:
    """A zone or mask in frame pixels: (n, 2) float64 vertices."""

    name: str
    points_px: np.ndarray
    colour: BGR


@dataclass(frozen=True, slots=True)
class NamedLine:
    """A directed line in frame pixels: (2, 2) float64, p1 then p2; the directions its rules count."""

    name: str
    ends_px: np.ndarray
    colour: BGR
    directions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SceneShapes:
    """Every zone, line and mask of one camera, in pixels of one frame size."""

    frame_wh: tuple[int, int]
    zones: tuple[NamedPolygon, ...]
    lines: tuple[NamedLine, ...]
    masks: tuple[NamedPolygon, ...]


def _line_directions(camera: CameraConfig, line_name: str) -> tuple[str, ...]:
    found: set[str] = set()
    for rule in camera.rules:
        if isinstance(rule, WrongWayRuleConfig) and rule.line == line_name:
            found.add(rule.forbidden_direction)
        elif isinstance(rule, LineCrossingRuleConfig) and rule.line == line_name:
            found.update(("A_to_B", "B_to_A") if rule.direction == "both" else (rule.direction,))
    return tuple(sorted(found))


def scene_shapes(camera: CameraConfig, frame_wh: tuple[int, int]) -> SceneShapes:
    """Convert a camera's zones, lines and masks to pixels of `frame_wh` (width, height)."""
    zones = tuple(
        NamedPolygon(z.name, polygon_to_pixels(z.points, z.units, frame_wh), palette_bgr(i))
        for i, z in enumerate(camera.zones)
    )
    lines = tuple(
        NamedLine(
            ln.name,
            polygon_to_pixels(list(ln.points), ln.units, frame_wh),
            palette_bgr(len(zones) + i),
            _line_directions(camera, ln.name),
        )
        for i, ln in enumerate(camera.lines)
    )
    masks = tuple(NamedPolygon(m.name, polygon_to_pixels(m.points, m.units, frame_wh), MASK_BGR) for m in camera.masks)
    return SceneShapes(frame_wh, zones, lines, masks)


def _int_points(points_px: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points_px, np.float64)).astype(np.int32).reshape(-1, 1, 2)


def _blend_polygon(canvas_bgr: np.ndarray, points_px: np.ndarray, colour: BGR, alpha: float) -> None:
    """Tint the inside of a polygon: (1 - alpha) * picture + alpha * colour (rounded)."""
    h, w = canvas_bgr.shape[:2]
    pts = _int_points(points_px)
    x, y, bw, bh = cv2.boundingRect(pts)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
    if x1 <= x0 or y1 <= y0:
        return
    # Only the polygon's bounding box is touched: a whole-frame blend per zone costs ms per frame.
    roi = canvas_bgr[y0:y1, x0:x1]
    inside = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(inside, [pts - np.array([x0, y0], np.int32)], 255)
    blended = cv2.addWeighted(roi, 1.0 - alpha, np.full_like(roi, colour), alpha, 0.0)
    cv2.copyTo(blended, inside, roi)  # writes through the view into the canvas


def draw_label(canvas_bgr: np.ndarray, text: str, org_xy: tuple[float, float], colour: BGR, scale: float = 0.5) -> None:
    """Text on a dark box (readable on any background), its top-left corner at org_xy, kept inside the frame."""
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    h, w = canvas_bgr.shape[:2]
    x = int(min(max(org_xy[0], 0), max(w - tw - 4, 0)))
    y = int(min(max(org_xy[1], 0), max(h - th - base - 4, 0)))
    cv2.rectangle(canvas_bgr, (x, y), (x + tw + 4, y + th + base + 4), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas_bgr, text, (x + 2, y + th + 2), _FONT, scale, colour, 1, cv2.LINE_AA)


def draw_zone(canvas_bgr: np.ndarray, zone: NamedPolygon, *, colour: BGR | None = None, caption: str = "") -> None:
    """A zone: tinted inside, 2 px outline, name at its first vertex."""
    c = colour or zone.colour
    _blend_polygon(canvas_bgr, zone.points_px, c, _ZONE_FILL_ALPHA)
    cv2.polylines(canvas_bgr, [_int_points(zone.points_px)], True, c, 2, cv2.LINE_8)
    x, y = zone.points_px[0]
    draw_label(canvas_bgr, f"zone {zone.name}{caption}", (x + 4, y + 4), c)


def draw_mask(canvas_bgr: np.ndarray, mask: NamedPolygon) -> None:
    """A mask: darkened (nothing there is seen), thin outline, name."""
    _blend_polygon(canvas_bgr, mask.points_px, (0, 0, 0), _MASK_FILL_ALPHA)
    cv2.polylines(canvas_bgr, [_int_points(mask.points_px)], True, mask.colour, 1, cv2.LINE_8)
    x, y = mask.points_px[0]
    draw_label(canvas_bgr, f"mask {mask.name}", (x + 4, y + 4), (200, 200, 200))


def line_side_points(ends_px: np.ndarray, offset_px: float = _SIDE_LABEL_OFFSET_PX) -> tuple[np.ndarray, np.ndarray]:
    """Points beside the segment's midpoint on side A (left of p1->p2) and side B (right)."""
    p1, p2 = np.asarray(ends_px, np.float64).reshape(2, 2)
    d = p2 - p1
    # With y down, (-dy, dx) points to the walker's right: side B.
    normal_b = np.array([-d[1], d[0]]) / float(np.hypot(d[0], d[1]))
    mid = (p1 + p2) / 2.0
    return mid - normal_b * offset_px, mid + normal_b * offset_px


def _side_marker(canvas_bgr: np.ndarray, centre: np.ndarray, letter: str, colour: BGR) -> None:
    cx, cy = round(centre[0]), round(centre[1])
    cv2.circle(canvas_bgr, (cx, cy), 10, (0, 0, 0), cv2.FILLED)
    cv2.circle(canvas_bgr, (cx, cy), 10, colour, 1, cv2.LINE_AA)
    (tw, th), _ = cv2.getTextSize(letter, _FONT, 0.5, 1)
    cv2.putText(canvas_bgr, letter, (cx - tw // 2, cy + th // 2), _FONT, 0.5, colour, 1, cv2.LINE_AA)


def draw_line(canvas_bgr: np.ndarray, line: NamedLine, *, colour: BGR | None = None, caption: str = "") -> None:
    """A directed line: arrow p1->p2, A and B side markers, an arrow across it per counted direction, name."""
    c = colour or line.colour
    p1, p2 = np.asarray(line.ends_px, np.float64).reshape(2, 2)
    length = max(float(np.hypot(*(p2 - p1))), 1.0)
    cv2.arrowedLine(canvas_bgr, _pt(p1), _pt(p2), c, 2, cv2.LINE_AA, tipLength=min(0.3, 18.0 / length))
    side_a, side_b = line_side_points(line.ends_px)
    along = (p2 - p1) / length * 14.0  # the crossing arrows sit beside the A/B markers
    for direction in line.directions:
        tail, head = (side_a, side_b) if direction == "A_to_B" else (side_b, side_a)
        shift = along if direction == "A_to_B" else -along
        cv2.arrowedLine(canvas_bgr, _pt(tail + shift), _pt(head + shift), c, 2, cv2.LINE_AA, tipLength=0.35)
    _side_marker(canvas_bgr, side_a, "A", c)
    _side_marker(canvas_bgr, side_b, "B", c)
    draw_label(canvas_bgr, f"line {line.name}{caption}", (p1[0] + 6, p1[1] - 22), c)


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))


def draw_motion_regions(canvas_bgr: np.ndarray, regions_xyxy_px: np.ndarray) -> None:
    """Motion regions as thin boxes."""
    for x1, y1, x2, y2 in np.asarray(regions_xyxy_px, np.float32).reshape(-1, 4):
        cv2.rectangle(canvas_bgr, _pt(np.array([x1, y1])), _pt(np.array([x2, y2])), MOTION_BGR, 1, cv2.LINE_8)


def track_colour(track_id: int) -> BGR:
    """A stable colour per track id."""
    return palette_bgr(int(track_id) * 3 + 1)


def draw_tracks(canvas_bgr: np.ndarray, tracks: Tracks, class_names: Sequence[str]) -> None:
    """Boxes with 'class score #id'."""
    for box, score, cid, tid in zip(tracks.box_xyxy_px, tracks.score, tracks.class_id, tracks.track_id, strict=False):
        c = track_colour(int(tid))
        cv2.rectangle(canvas_bgr, _pt(box[:2]), _pt(box[2:]), c, 2, cv2.LINE_8)
        name = class_names[int(cid)] if 0 <= int(cid) < len(class_names) else str(int(cid))
        draw_label(canvas_bgr, f"{name} {float(score):.2f} #{int(tid)}", (float(box[0]), float(box[1]) - 18), c, 0.4)


def draw_trails(canvas_bgr: np.ndarray, trails: Mapping[int, Sequence[tuple[float, float]]]) -> None:
    """Each track's recent anchor points as a polyline."""
    for tid, points in trails.items():
        if len(points) >= 2:
            cv2.polylines(canvas_bgr, [_int_points(np.asarray(points))], False, track_colour(tid), 2, cv2.LINE_AA)


def draw_banners(canvas_bgr: np.ndarray, banners: Sequence[tuple[str, str]]) -> None:
    """Full-width banners stacked from the top: (phase, text), coloured by phase."""
    w = canvas_bgr.shape[1]
    y = 0
    for phase, text in banners:
        cv2.rectangle(canvas_bgr, (0, y), (w - 1, y + 22), BANNER_BGR.get(phase, (60, 60, 60)), cv2.FILLED)
        cv2.putText(canvas_bgr, text, (6, y + 16), _FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        y += 24
