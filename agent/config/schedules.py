"""When a rule is armed: weekly windows in the site's time zone, holidays, validity dates."""

from __future__ import annotations

__all__ = ["WEEKDAYS", "ScheduleConfig", "ScheduleWindow", "Weekday"]

import re
from datetime import date, timedelta
from typing import Literal

from pydantic import Field, model_validator

from agent.config.model import ConfigModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock_minutes(value: str) -> int:
    match = re.fullmatch(r"([01]\d|2[0-4]):([0-5]\d)", value)
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"time {value!r} is not HH:MM between 00:00 and 24:00")
    return int(match.group(1)) * 60 + int(match.group(2))


class ScheduleWindow(ConfigModel):
    """Weekly time window in the site's time zone. A window whose end is
    earlier than its start runs past midnight into the next day; it belongs to
    the day it starts on (so a holiday cancels the night that starts on it)."""

    days: list[Weekday] = Field(description="days the window starts on: mon ... sun")
    start: str = Field(description="local start time HH:MM")
    end: str = Field(description="local end time HH:MM (24:00 for midnight at the end of the day)")

    @model_validator(mode="after")
    def _valid_window(self) -> ScheduleWindow:
        start, end = _clock_minutes(self.start), _clock_minutes(self.end)
        if not self.days:
            raise ValueError(f"window {self.start}-{self.end} has no days, so it never fires")
        if start == end or (start == 1440 and end == 0):
            raise ValueError(f"window {self.start}-{self.end} is empty: start equals end, so it never fires")
        if start == 1440:
            raise ValueError("a window cannot start at 24:00; use 00:00")
        return self

    def minutes_of_week(self) -> list[tuple[int, int]]:
        """[start, end) minute ranges within the week (0 = Monday 00:00), wrapping at the week's end."""
        start, end = _clock_minutes(self.start), _clock_minutes(self.end)
        length = end - start if end > start else 1440 - start + end
        return [(WEEKDAYS.index(d) * 1440 + start, WEEKDAYS.index(d) * 1440 + start + length) for d in self.days]


class ScheduleConfig(ConfigModel):
    """When a rule is armed. Without `after_hours`, inside the windows; with
    it, outside them (the windows are the business hours). Holidays have no
    windows: a rule is disarmed all day, an after-hours rule armed all day."""

    windows: list[ScheduleWindow] = Field(min_length=1, description="weekly windows (business hours)")
    after_hours: bool = Field(default=False, description="armed outside the windows instead of inside")
    holidays: list[date] = Field(default=[], description="dates (YYYY-MM-DD) on which no window applies")
    valid_from: date | None = Field(default=None, description="first date the rule is armed at all")
    valid_until: date | None = Field(default=None, description="last date the rule is armed at all")

    @model_validator(mode="after")
    def _fires_sometimes(self) -> ScheduleConfig:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from, so the schedule never fires")
        covered = [False] * (7 * 1440)
        for window in self.windows:
            for lo, hi in window.minutes_of_week():
                for minute in range(lo, hi):
                    covered[minute % len(covered)] = True
        if self.after_hours and all(covered) and not self._has_holiday_in_range():
            raise ValueError("after_hours with windows covering the whole week never fires (and no holidays)")
        if not self.after_hours and self._every_active_day_is_holiday():
            raise ValueError("every day the windows apply to is a holiday, so the schedule never fires")
        return self

    def _has_holiday_in_range(self) -> bool:
        return any(
            (self.valid_from is None or h >= self.valid_from) and (self.valid_until is None or h <= self.valid_until)
            for h in self.holidays
        )

    def _every_active_day_is_holiday(self) -> bool:
        # Only a bounded range can be all holidays; an open one always has a free week ahead.
        if self.valid_from is None or self.valid_until is None:
            return False
        days = {WEEKDAYS.index(d) for w in self.windows for d in w.days}
        holidays = set(self.holidays)
        span = (self.valid_until - self.valid_from).days + 1
        dates = (self.valid_from + timedelta(days=i) for i in range(span))
        return all(d in holidays for d in dates if d.weekday() in days)
