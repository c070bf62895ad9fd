"""A recipient's view of an alert: allow-list projection, pseudonyms, coarse location.

Pure functions over the alert's JSON form (`Alert.model_dump(mode="json")`).
A path on the allow-list keeps that value (an object path keeps its subtree);
anything else is left out, so a field the policy does not name cannot reach
the recipient, whatever its name or type.
"""

from __future__ import annotations

__all__ = ["FieldSelection", "coarsen_areas", "project"]

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.alerts.fields import ALWAYS_KEPT

_KM_PER_DEGREE = 111.32


@dataclass(frozen=True, slots=True)
class FieldSelection:
    """A compiled allow-list.

    Attributes:
        everything: the list held `*`.
        paths: allowed dotted paths, always-kept envelope included.
    """

    everything: bool
    paths: frozenset[str]

    @classmethod
    def of(cls, paths: Iterable[str]) -> FieldSelection:
        listed = set(paths)
        return cls("*" in listed, frozenset((listed - {"*"}) | set(ALWAYS_KEPT)))

    def keeps(self, path: str) -> bool:
        """Whether `path` or one of its ancestors is allowed."""
        if self.everything:
            return True
        parts = path.split(".")
        return any(".".join(parts[:i]) in self.paths for i in range(1, len(parts) + 1))

    def leads_to(self, path: str) -> bool:
        """Whether some allowed path lies below `path`."""
        prefix = path + "."
        return any(p.startswith(prefix) for p in self.paths)


def project(data: dict[str, Any], selection: FieldSelection, prefix: str = "") -> dict[str, Any]:
    """The part of `data` that `selection` allows; a new dict, `data` is not changed."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if selection.keeps(path):
            out[key] = value
        elif selection.leads_to(path):
            inner = _project_value(value, selection, path)
            if inner:
                out[key] = inner
    return out


def _project_value(value: Any, selection: FieldSelection, path: str) -> Any:
    if isinstance(value, dict):
        return project(value, selection, path + ".")
    if isinstance(value, list):
        items = [project(v, selection, path + ".") for v in value if isinstance(v, dict)]
        return [item for item in items if item]
    return None  # a leaf whose path is not allowed


def coarsen_areas(view: dict[str, Any], *, mode: str, decimals: int) -> None:
    """Round (or drop) `info.area[].circle` in place in a view the caller owns.

    Rounding to `decimals` moves the centre by up to half a unit in each axis,
    so the radius grows by that much (diagonal) to still cover the site.
    """
    areas = view.get("info", {}).get("area", [])
    for area in areas:
        circle = area.get("circle")
        if circle is None:
            continue
        if mode == "zone_only":
            del area["circle"]
            continue
        area["circle"] = _round_circle(circle, decimals)


def _round_circle(circle: str, decimals: int) -> str:
    centre, _, radius = circle.partition(" ")
    lat_text, _, lon_text = centre.partition(",")
    lat, lon, radius_km = float(lat_text), float(lon_text), float(radius or 0.0)
    half_unit_km = 0.5 * 10.0 ** (-decimals) * _KM_PER_DEGREE * math.sqrt(2.0)
    grown = radius_km + half_unit_km
    return f"{round(lat, decimals):.{decimals}f},{round(lon, decimals):.{decimals}f} {grown:.3g}"
