"""The search filter as people type it (query parameters) and as the store takes it (`AlertFilter`).

Parameters: `from`, `to` (an ISO date `2026-03-01`, a browser's
datetime-local `2026-03-01T23:00`, or a full ISO time with an offset;
without an offset a time is UTC, as every time the console shows is), `site`,
`rule`, `severity`, `state` (the incident's state) and `exercise` (`1`,
`true`, `on`: include exercise alerts; `only`: nothing else). A date alone in
`to` means through the end of that day. The same parameters serve `/search`,
`/export.csv` and `/api/alerts`, so an export holds exactly what the page listed.
"""

from __future__ import annotations

__all__ = ["STATES", "SearchError", "SearchForm", "parse_when", "read_form", "search_filter"]

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from agent.agency.store import AlertFilter
from agent.agency.store.tables import SEVERITY_RANK
from agent.alerts.status import STATUS_KINDS

STATES = ("new", *STATUS_KINDS)
MAX_TEXT = 200
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YES = frozenset({"1", "true", "on", "yes"})


class SearchError(ValueError):
    """A filter value that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class SearchForm:
    """What the user asked for, as typed (to fill the form again and build export links)."""

    since: str = ""
    until: str = ""
    site: str = ""
    rule: str = ""
    severity: str = ""
    state: str = ""
    exercise: str = ""

    def query(self) -> dict[str, str]:
        """The non-empty parameters, under their query names."""
        pairs = {
            "from": self.since,
            "to": self.until,
            "site": self.site,
            "rule": self.rule,
            "severity": self.severity,
            "state": self.state,
            "exercise": self.exercise,
        }
        return {k: v for k, v in pairs.items() if v}


def parse_when(text: str, *, end: bool = False) -> float | None:
    """Seconds since the epoch of a typed time (see the module docstring); None for an empty field.

    Raises:
        SearchError: text that is not a date or time.
    """
    text = text.strip()
    if not text:
        return None
    try:
        if _DATE_ONLY.match(text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return (day + timedelta(days=1) if end else day).timestamp()
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SearchError(f"{text!r} is not a date (2026-03-01) or a time (2026-03-01T23:00)") from None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


def _field(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    # Longer than any id or time can be: cut, the search then simply finds nothing.
    return value.strip()[:MAX_TEXT] if isinstance(value, str) else ""


def _exercise(value: str) -> bool | None:
    if value.lower() == "only":
        return True
    return None if value.lower() in _YES else False


def read_form(params: Mapping[str, str]) -> SearchForm:
    """The filter fields as typed (each cut to 200 characters)."""
    return SearchForm(*(_field(params, n) for n in ("from", "to", "site", "rule", "severity", "state", "exercise")))


def search_filter(form: SearchForm) -> AlertFilter:
    """The store's filter for what the form says.

    Raises:
        SearchError: a time that does not parse, an unknown severity or state, a range that ends before it starts.
    """
    try:
        since = parse_when(form.since)
    except SearchError as err:
        raise SearchError(f"from: {err}") from None
    try:
        until = parse_when(form.until, end=True)
    except SearchError as err:
        raise SearchError(f"to: {err}") from None
    if since is not None and until is not None and until <= since:
        raise SearchError("to: the range ends before it starts")
    if form.severity and form.severity not in SEVERITY_RANK:
        raise SearchError(f"severity: one of {', '.join(SEVERITY_RANK)}")
    if form.state and form.state not in STATES:
        raise SearchError(f"state: one of {', '.join(STATES)}")
    return AlertFilter(
        since=since,
        until=until,
        site_id=form.site or None,
        rule=form.rule or None,
        severity=form.severity or None,
        state=form.state or None,
        exercise=_exercise(form.exercise),
    )
