"""Zones too small or too large to be what the integrator meant.

A zone covering under 0.5% of the frame rarely holds a person's feet for
long; one covering over 95% is usually a normalised zone written in pixels
by mistake or a 'whole frame' zone that masks nothing. Normalised zones are
checked from the config alone; pixel zones need the frame size, which is
read from the camera's source when it is a readable file.
"""

from __future__ import annotations

__all__ = ["MAX_ZONE_FRACTION", "MIN_ZONE_FRACTION", "source_frame_size", "zone_area_fraction", "zone_warnings"]

from pathlib import Path

import cv2
import numpy as np

from agent.config import CameraConfig, ZoneConfig
from agent.rules.geometry import polygon_to_pixels
from agent.sources.spec import parse_source

MIN_ZONE_FRACTION = 0.005
MAX_ZONE_FRACTION = 0.95


def zone_area_fraction(zone: ZoneConfig, frame_wh: tuple[int, int] | None) -> float | None:
    """Share of the frame the zone covers (shoelace area, capped at 1); None when unknown."""
    if zone.units == "pixels" and frame_wh is None:
        return None
    wh = frame_wh or (1, 1)
    poly = polygon_to_pixels(zone.points, zone.units, wh)
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return min(area / float(wh[0] * wh[1]), 1.0)


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
    """One line per zone that is too small or too large, or whose check had to be skipped."""
    needs_size = any(z.units == "pixels" for z in camera.zones)
    frame_wh = source_frame_size(camera.source) if needs_size else None
    warnings = []
    for zone in camera.zones:
        fraction = zone_area_fraction(zone, frame_wh)
        where = f"camera {camera.id!r} zone {zone.name!r}"
        if fraction is None:
            warnings.append(f"{where}: size check skipped: pixel zone and the source is not a readable file")
        elif fraction < MIN_ZONE_FRACTION:
            warnings.append(f"{where} covers {fraction:.2%} of the frame (under {MIN_ZONE_FRACTION:.1%}): too small?")
        elif fraction > MAX_ZONE_FRACTION:
            warnings.append(f"{where} covers {fraction:.1%} of the frame (over {MAX_ZONE_FRACTION:.0%}): too large?")
    return warnings
