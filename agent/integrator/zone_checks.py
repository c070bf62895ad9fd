"""Zones too small or too large to be what the integrator meant.

A zone covering under 0.5% of the frame rarely holds a person's feet for
long; one covering over 95% is usually a normalised zone written in pixels
by mistake or a 'whole frame' zone that masks nothing. Normalised zones are
checked from the config alone; pixel zones need the frame size, which is
read from the camera's source when it is a readable file.

A pixel zone may reach past the frame's edges (pixel points are only known
to be non-negative): it is clipped to the frame before it is measured, since
only the part inside can ever hold an object, and a zone partly or wholly
outside is warned about.

Shares are printed as percentages rounded half up (0.125% reads 0.13%, as
a person would round it), the same on every machine: see `percent_text`.
"""

from __future__ import annotations

__all__ = [
    "MAX_ZONE_FRACTION",
    "MIN_ZONE_FRACTION",
    "clip_to_frame",
    "percent_text",
    "source_frame_size",
    "zone_area_fraction",
    "zone_warnings",
]

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import cv2
import numpy as np

from agent.config import CameraConfig, ZoneConfig
from agent.rules.geometry import polygon_to_pixels
from agent.sources.spec import parse_source

MIN_ZONE_FRACTION = 0.005
MAX_ZONE_FRACTION = 0.95

# Zone points are written with a few decimals, so a share that truly ends in 5 at the
# shown digit has nothing past 9 decimals of a percent; what is there is float noise of
# the shoelace sum (about 1e-14 of the share), which this cut drops.
_NOISE_QUANTUM = Decimal("1e-9")


def percent_text(fraction: float, decimals: int) -> str:
    """`fraction` (0-1) as a percentage with `decimals` decimals, rounded half up.

    A format spec (`f"{x:.2%}"`) rounds the binary float half to even, so a
    zone of exactly 0.125% (computed as 0.0012499999999999998 or as
    0.0012500000000000002, depending on the arithmetic) prints 0.12% on one
    machine and 0.13% on another. Here the exact binary value is first cut
    to 9 decimals of a percent (which drops the noise), then rounded half
    up: 0.125% -> "0.13%", 0.225% -> "0.23%", 96.25% at one decimal -> "96.3%".
    """
    percent = (Decimal(fraction) * 100).quantize(_NOISE_QUANTUM, ROUND_HALF_EVEN)
    return f"{percent.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)}%"


def _area(poly: np.ndarray) -> float:
    """Shoelace area of an (n, 2) polygon (0 for fewer than 3 points)."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def clip_to_frame(poly: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray:
    """The part of an (n, 2) pixel polygon inside the frame (Sutherland-Hodgman, one frame edge at a time).

    The frame is convex, so this is exact for any simple polygon, convex or not
    (a concave one may come back with edges along the frame border, which add no area).
    """
    w, h = frame_wh
    # Each frame edge as (axis, limit, keep-below): x >= 0, x <= w, y >= 0, y <= h.
    out = [tuple(p) for p in np.asarray(poly, np.float64).reshape(-1, 2)]
    for axis, limit, below in ((0, 0.0, False), (0, float(w), True), (1, 0.0, False), (1, float(h), True)):
        if not out:
            break
        points, out = out, []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            cur_in = cur[axis] <= limit if below else cur[axis] >= limit
            prev_in = prev[axis] <= limit if below else prev[axis] >= limit
            if cur_in != prev_in:
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
    return np.asarray(out, np.float64).reshape(-1, 2)


def zone_area_fraction(zone: ZoneConfig, frame_wh: tuple[int, int] | None) -> float | None:
    """Share of the frame the zone's part inside the frame covers (0-1); None when the frame size is unknown."""
    if zone.units == "pixels" and frame_wh is None:
        return None
    wh = frame_wh or (1, 1)
    poly = clip_to_frame(polygon_to_pixels(zone.points, zone.units, wh), wh)
    return min(_area(poly) / float(wh[0] * wh[1]), 1.0)


def _outside_share(zone: ZoneConfig, frame_wh: tuple[int, int]) -> float:
    """Share of the zone's own area that lies outside the frame (0: all inside)."""
    poly = polygon_to_pixels(zone.points, zone.units, frame_wh)
    whole = _area(poly)
    return 1.0 - _area(clip_to_frame(poly, frame_wh)) / whole if whole > 0 else 0.0


def source_frame_size(source: str | int) -> tuple[int, int] | None:
    """(width, height) of a readable video file source; None for streams, devices and unreadable files."""
    spec = parse_source(source)
    if not spec.is_file or not Path(str(spec.target)).is_file():
        return None
    cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG)
    try:
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    return (w, h) if w > 0 and h > 0 else None


def zone_warnings(camera: CameraConfig) -> list[str]:
    """One line per zone that is too small, too large or (partly) outside the frame, or whose check was skipped."""
    needs_size = any(z.units == "pixels" for z in camera.zones)
    frame_wh = source_frame_size(camera.source) if needs_size else None
    return [line for zone in camera.zones for line in _warnings_of(zone, f"camera {camera.id!r}", frame_wh)]


def _warnings_of(zone: ZoneConfig, camera: str, frame_wh: tuple[int, int] | None) -> list[str]:
    where = f"{camera} zone {zone.name!r}"
    fraction = zone_area_fraction(zone, frame_wh)
    if fraction is None:
        return [f"{where}: size check skipped: pixel zone and the source is not a readable file"]
    warnings = []
    if zone.units == "pixels" and frame_wh is not None and _outside_share(zone, frame_wh) > 0:
        frame = f"{frame_wh[0]}x{frame_wh[1]}"
        if fraction == 0:
            return [f"{where} lies wholly outside the {frame} frame: no object can ever be inside it"]
        share = percent_text(fraction, 1 if fraction >= MIN_ZONE_FRACTION else 2)
        warnings.append(f"{where} lies partly outside the {frame} frame; the part inside covers {share} of the frame")
    if fraction < MIN_ZONE_FRACTION:
        # Two decimals: at one, a 0.04% zone and a 0.01% zone would both read 0.0%.
        share, limit = percent_text(fraction, 2), percent_text(MIN_ZONE_FRACTION, 1)
        warnings.append(f"{where} covers {share} of the frame (under {limit}): too small?")
    elif fraction > MAX_ZONE_FRACTION:
        share, limit = percent_text(fraction, 1), percent_text(MAX_ZONE_FRACTION, 0)
        warnings.append(f"{where} covers {share} of the frame (over {limit}): too large?")
    return warnings
