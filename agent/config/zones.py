"""Zones, lines and masks of a camera: polygons and segments, checked to be drawable."""

from __future__ import annotations

__all__ = ["LineConfig", "MaskConfig", "Point", "Units", "ZoneConfig"]

from typing import Literal

from pydantic import Field, model_validator

from agent.config.model import ID_PATTERN, ConfigModel

Point = tuple[float, float]
Units = Literal["normalized", "pixels"]
_UNITS_HELP = "normalized: 0-1 fractions of frame width/height; pixels: frame pixels"


def _check_points_range(what: str, points: list[Point], units: str) -> None:
    if units == "normalized":
        for x, y in points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"{what}: point ({x}, {y}) is outside 0-1; use units: pixels for pixel coordinates")
    elif any(x < 0 or y < 0 for x, y in points):
        raise ValueError(f"{what}: pixel coordinates must not be negative")


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments ab and cd intersect (touching counts)."""

    def orient(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    def on_segment(p: Point, q: Point, r: Point) -> bool:
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if (o1 > 0) != (o2 > 0) and (o3 > 0) != (o4 > 0) and 0 not in (o1, o2, o3, o4):
        return True
    return (
        (o1 == 0 and on_segment(a, b, c))
        or (o2 == 0 and on_segment(a, b, d))
        or (o3 == 0 and on_segment(c, d, a))
        or (o4 == 0 and on_segment(c, d, b))
    )


def _check_simple_polygon(what: str, points: list[Point]) -> None:
    """Refuse polygons whose edges cross or that enclose no area."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a vertex by construction
            if _segments_cross(*edges[i], *edges[j]):
                raise ValueError(f"{what}: edges {i + 1} and {j + 1} cross; the polygon must not self-intersect")
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in edges)
    if abs(area2) < 1e-12:
        raise ValueError(f"{what}: the polygon encloses no area")


class ZoneConfig(ConfigModel):
    name: str = Field(pattern=ID_PATTERN, description="zone name, unique within the camera")
    points: list[Point] = Field(min_length=3, description="polygon vertices, in order, edges must not cross")
    units: Units = Field(default="normalized", description=_UNITS_HELP)

    @model_validator(mode="after")
    def _valid_polygon(self) -> ZoneConfig:
        _check_points_range(f"zone {self.name!r}", self.points, self.units)
        _check_simple_polygon(f"zone {self.name!r}", self.points)
        return self


class LineConfig(ConfigModel):
    """A directed line segment. Side A is on the left of someone walking from
    the first point to the second as drawn on the image (x right, y down);
    side B is on their right."""

    name: str = Field(pattern=ID_PATTERN, description="line name, unique within the camera")
    points: tuple[Point, Point] = Field(description="the segment's two end points, p1 then p2")
    units: Units = Field(default="normalized", description=_UNITS_HELP)

    @model_validator(mode="after")
    def _valid_segment(self) -> LineConfig:
        _check_points_range(f"line {self.name!r}", list(self.points), self.units)
        if self.points[0] == self.points[1]:
            raise ValueError(f"line {self.name!r}: the two points are the same")
        return self


class MaskConfig(ConfigModel):
    name: str = Field(pattern=ID_PATTERN, description="mask name, for logs and previews")
    points: list[Point] = Field(min_length=3, description="polygon vertices, in order")
    units: Literal["normalized", "pixels"] = Field(default="normalized", description="as for zones")
