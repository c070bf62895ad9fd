"""How many refused messages a minute are audited and logged one by one; a flood past that is summed up.

A recipient's broken software (or someone with a stolen password) can send
thousands of unbelievable statuses or requests a minute. Each is counted,
but only the first `per_min` of a minute get their own audit record and log
line; the rest are summed up in one line when the next minute starts, so a
flood can neither fill the disk nor bury the records that matter.
"""

from __future__ import annotations

__all__ = ["RejectionBudget"]

import logging
import time

from agent.logs import log_event


class RejectionBudget:
    """One minute window of audited rejections.

    Args:
        per_min: rejections audited one by one per minute.
        logger: where the summing-up line goes.
        event: its event name.
    """

    def __init__(self, per_min: int, logger: logging.Logger, event: str) -> None:
        self._per_min = per_min
        self._logger = logger
        self._event = event
        self._start, self._audited, self._skipped = 0.0, 0, 0

    def allow(self) -> bool:
        """Whether another rejection may be audited and logged this minute."""
        now = time.monotonic()
        if now - self._start >= 60.0:
            if self._skipped:
                log_event(self._logger, self._event, logging.WARNING, count=self._skipped, per_s=60)
            self._start, self._audited, self._skipped = now, 0, 0
        if self._audited >= self._per_min:
            self._skipped += 1
            return False
        self._audited += 1
        return True
