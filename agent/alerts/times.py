"""The one way event times are written: RFC 3339 in UTC.

Every time the agent writes as text itself goes through `utc_time`: CAP
fields (`cap_time`: whole seconds and `+00:00`, because CAP 1.2 forbids `Z`
and fractions) and a recipient's `expires` (milliseconds and `Z`, set by the
sharing policy). Aware datetimes in any zone are converted to UTC first;
fractions are cut, never rounded, so a time is never written later than it
happened.
"""

from __future__ import annotations

__all__ = ["cap_time", "utc_time"]

from datetime import UTC, datetime
from typing import Literal

Precision = Literal["seconds", "milliseconds", "microseconds"]


def utc_time(ts: datetime, *, precision: Precision, zulu: bool) -> str:
    """`ts` in UTC as RFC 3339 text, e.g. `2026-03-01T23:00:00.250Z`.

    Args:
        ts: an aware datetime (a naive one is taken as local time, as `astimezone` does).
        precision: the smallest unit written; finer parts are cut.
        zulu: write the offset as `Z` rather than `+00:00`.
    """
    text = ts.astimezone(UTC).isoformat(timespec=precision)
    return text.removesuffix("+00:00") + "Z" if zulu else text


def cap_time(ts: datetime) -> str:
    """CAP 1.2 dateTime: whole seconds with a numeric offset, `2026-03-01T23:00:00+00:00`."""
    return utc_time(ts, precision="seconds", zulu=False)
