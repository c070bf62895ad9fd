"""The transparency report as one self-contained HTML page (Jinja2, autoescaping always on).

Everything from the log (recipient names, agreement ids, justifications) is
untrusted text: the template prints it only through autoescaping, never
`|safe`. The page loads nothing: styles are inline, plots are inline SVG,
and a Content-Security-Policy forbids scripts and fetches, so a copy read
offline or mailed on shows the same thing.
"""

from __future__ import annotations

__all__ = ["render_html"]

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from agent.transparency.charts import BarChart, ColumnChart, bar_chart, column_chart
from agent.transparency.figures import CAP_CLASSES, Figures

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE = "transparency_report.html.j2"
# Snapshot values in the order a reader weighs them: from nothing shared to a full picture.
_SNAPSHOT_ORDER = ("none", "faces-filled", "unredacted", "withheld", "unknown")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(seconds=_seconds, counts=_counts, utc=_utc)
    return env


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} s" if value >= 100 else f"{value:.1f} s"


def _utc(text: str | None) -> str:
    """An ISO time from the log as `YYYY-MM-DD HH:MM:SS` UTC (as written when it is not one)."""
    if text is None:
        return "–"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _counts(mapping: Mapping[str, int]) -> str:
    """`a: 1, b: 2` (a dash for none)."""
    return ", ".join(f"{key}: {n}" for key, n in mapping.items()) or "–"


def _ordered(mapping: Mapping[str, int], order: tuple[str, ...]) -> list[tuple[str, int]]:
    known = [(key, mapping[key]) for key in order if key in mapping]
    return known + sorted((k, n) for k, n in mapping.items() if k not in order)


def _charts(figures: Figures) -> dict[str, BarChart | list[ColumnChart]]:
    actual = figures.total("Actual")
    return {
        "weekly": [column_chart(w.recipient, w.weeks) for w in figures.weekly],
        "snapshots": bar_chart(
            "Messages by picture shared", _ordered(actual.snapshot_kinds if actual else {}, _SNAPSHOT_ORDER)
        ),
        "locations": bar_chart("Messages by location precision", sorted((actual.locations if actual else {}).items())),
        "field_groups": bar_chart(
            "Messages carrying each field group", sorted((actual.field_groups if actual else {}).items())
        ),
        "withheld": bar_chart("Alerts withheld, by reason", sorted(figures.withheld_total().items())),
    }


def render_html(figures: Figures, *, log_name: str, generated: datetime) -> str:
    """The report page for `figures`, counted from the log file named `log_name`."""
    template = _environment().get_template(TEMPLATE)
    return template.render(
        f=figures,
        classes=CAP_CLASSES,
        other_classes=CAP_CLASSES[1:],
        charts=_charts(figures),
        log_name=log_name,
        generated=generated.isoformat(timespec="seconds"),
    )
