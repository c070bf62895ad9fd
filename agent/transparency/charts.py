"""Bar-chart geometry for the report's inline SVG plots.

The report must open anywhere without fetching anything and the site agent
does not ship a plotting library, so the plots are plain SVG rectangles:
this module only computes where each bar goes; the HTML template draws them
(and escapes their labels, which come from the log).
"""

from __future__ import annotations

__all__ = ["Bar", "BarChart", "Column", "ColumnChart", "bar_chart", "column_chart"]

import math
from collections.abc import Sequence
from dataclasses import dataclass

_ROW_PX = 22
_BAR_PX = 16
_LABEL_PX = 230
_PLOT_PX = 380
_VALUE_PX = 60
_COLUMN_PX = 14
_COLUMN_GAP_PX = 3
_COLUMN_AREA_PX = 140
_AXIS_PX = 34
# Weeks named under the columns: about this many, so a year's labels do not overlap.
_AXIS_LABELS = 13


@dataclass(frozen=True, slots=True)
class Bar:
    """One horizontal bar: its label, its value and its place (pixels from the chart's top-left)."""

    label: str
    value: int
    y_px: int
    width_px: float


@dataclass(frozen=True, slots=True)
class BarChart:
    """Horizontal bars, one row per label; `bars` is empty when there is nothing to plot."""

    title: str
    bars: tuple[Bar, ...]
    label_width_px: int
    bar_height_px: int
    width_px: int
    height_px: int


@dataclass(frozen=True, slots=True)
class Column:
    """One vertical column: a period (an ISO week), its value and place; `show_label`: named on the axis."""

    label: str
    value: int
    x_px: int
    y_px: float
    height_px: float
    show_label: bool


@dataclass(frozen=True, slots=True)
class ColumnChart:
    """Vertical columns along a time axis, with the largest value named on the axis."""

    title: str
    columns: tuple[Column, ...]
    column_width_px: int
    baseline_px: int
    max_value: int
    width_px: int
    height_px: int


def bar_chart(title: str, items: Sequence[tuple[str, int]]) -> BarChart:
    """Bars for `items` (label, value), in the order given; bars scale to the largest value."""
    top = max((value for _, value in items), default=0)
    bars = tuple(
        Bar(label, value, i * _ROW_PX, _PLOT_PX * value / top if top else 0.0) for i, (label, value) in enumerate(items)
    )
    return BarChart(
        title=title,
        bars=bars if top else (),
        label_width_px=_LABEL_PX,
        bar_height_px=_BAR_PX,
        width_px=_LABEL_PX + _PLOT_PX + _VALUE_PX,
        height_px=max(_ROW_PX, len(items) * _ROW_PX),
    )


def column_chart(title: str, items: Sequence[tuple[str, int]]) -> ColumnChart:
    """Columns for `items` (period label, value) left to right; every few labels shown on the axis."""
    top = max((value for _, value in items), default=0)
    every = max(1, math.ceil(len(items) / _AXIS_LABELS))
    columns = tuple(
        Column(
            label=label,
            value=value,
            x_px=i * (_COLUMN_PX + _COLUMN_GAP_PX),
            y_px=_COLUMN_AREA_PX - (_COLUMN_AREA_PX * value / top if top else 0.0),
            height_px=_COLUMN_AREA_PX * value / top if top else 0.0,
            show_label=i % every == 0,
        )
        for i, (label, value) in enumerate(items)
    )
    return ColumnChart(
        title=title,
        columns=columns,
        column_width_px=_COLUMN_PX,
        baseline_px=_COLUMN_AREA_PX,
        max_value=top,
        width_px=max(200, len(items) * (_COLUMN_PX + _COLUMN_GAP_PX) + _VALUE_PX),
        height_px=_COLUMN_AREA_PX + _AXIS_PX,
    )
