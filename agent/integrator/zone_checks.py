"""Zones too small or too large to be what the integrator meant.

A zone covering under 0.5% of the frame rarely holds a person's feet for
long; one covering over 95% is usually a normalised zone written in pixels
by mistake or a 'whole frame' zone that masks nothing. Normalised zones are
checked from the config alone; pixel zones need the frame size, which is
read from the camera's source when it is a readable file.

Shares are printed as percentages rounded half up (0.125% reads 0.13%, as
a person would round it), the same on every machine: see `percent_text`.
"""

from __future__ import annotations

__all__ = [
    "MAX_ZONE_FRACTION",
    "MIN_ZONE_FRACTION",
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
            # Two decimals: at one, a 0.04% zone and a 0.01% zone would both read 0.0%.
            share, limit = percent_text(fraction, 2), percent_text(MIN_ZONE_FRACTION, 1)
            warnings.append(f"{where} covers {share} of the frame (under {limit}): too small?")
        elif fraction > MAX_ZONE_FRACTION:
            share, limit = percent_text(fraction, 1), percent_text(MAX_ZONE_FRACTION, 0)
            warnings.append(f"{where} covers {share} of the frame (over {limit}): too large?")
    return warnings
