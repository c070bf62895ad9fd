"""When a rule is armed: weekly windows in the site's time zone, holidays, after-hours.

A window belongs to the day it starts on; one whose end is before its start
runs past midnight into the next day. On a holiday (a date in the site's time
zone) no window starting that day applies. A normal schedule is armed inside
its windows; an after-hours schedule outside them, so holidays arm it all day.
`valid_from`/`valid_until` bound the dates on which it is armed at all.
"""

from __future__ import annotations

__all__ = ["Schedule"]

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.config import WEEKDAYS, ScheduleConfig


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class Schedule:
    """Answers "is the rule armed at this instant?".

    Args:
        config: the rule's schedule.
        timezone: IANA name of the site's time zone.
    """

    def __init__(self, config: ScheduleConfig, timezone: str) -> None:
        self._config = config
        self._tz = ZoneInfo(timezone)
        self._holidays = frozenset(config.holidays)
        # (weekday, start_min, end_min) with end_min > 1440 when the window runs past midnight.
        self._windows: list[tuple[int, int, int]] = []
        for w in config.windows:
            start, end = _minutes(w.start), _minutes(w.end)
            end = end if end > start else end + 1440
            self._windows.extend((WEEKDAYS.index(d), start, end) for d in w.days)
        self._cached_minute: int | None = None
        self._cached_armed = False

    def armed(self, ts_utc: datetime) -> bool:
        """Whether the rule is armed at `ts_utc` (timezone-aware)."""
        minute_key = int(ts_utc.timestamp() // 60)
        if minute_key != self._cached_minute:  # the answer only changes on whole minutes
            self._cached_minute = minute_key
            self._cached_armed = self._armed_at(ts_utc.astimezone(self._tz))
        return self._cached_armed

    def _armed_at(self, local: datetime) -> bool:
        today = local.date()
        c = self._config
        if (c.valid_from and today < c.valid_from) or (c.valid_until and today > c.valid_until):
            return False
        return self._in_window(today, local.hour * 60 + local.minute) != c.after_hours

    def _in_window(self, today: date, minute: int) -> bool:
        yesterday = today - timedelta(days=1)
        for weekday, start, end in self._windows:
            if weekday == today.weekday() and today not in self._holidays and start <= minute < end:
                return True
            if weekday == yesterday.weekday() and yesterday not in self._holidays and minute + 1440 < end:
                return True
        return False
