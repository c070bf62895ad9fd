"""The live queue's event stream: `/events`, server-sent events of every incident that changed.

The ingest service runs in another process (or several), so the console
cannot be told of a new alert in memory; it follows the store's `changes`
ids instead, polling `StoreReader.changed_incidents(after)` every
`live_poll_s` (0.5 s by default) on a worker thread. Each changed incident of
the stream's kind (live or exercise) goes out as one event named `incident`
whose id is the change id and whose data is the incident's JSON
(`incident_event_data`); `static/console.js` puts it into the table, or takes
it out once it is dismissed or closed. A browser that reconnects sends the
last id it saw (`Last-Event-ID`) and misses nothing; a page passes the change
id it was drawn at (`after`) for the same reason.

A stream re-checks its user every minute, so a disabled account stops
receiving events without reloading.
"""

from __future__ import annotations

__all__ = ["incident_event_data", "incident_events", "router"]

import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import asdict
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from agent.agency.console.auth import Viewer
from agent.agency.console.context import Console
from agent.agency.console.templating import incident_path
from agent.agency.store import IncidentRow, StoreReader

router = APIRouter(include_in_schema=False)
BATCH = 200
USER_CHECK_S = 60.0
PING_S = 15


def incident_event_data(row: IncidentRow, site_name: str) -> dict[str, Any]:
    """An incident as the live queue's script reads it: its row, its site's name and its page."""
    return {**asdict(row), "site_name": site_name, "url": incident_path(row.site_id, row.incident_id)}


async def incident_events(
    reader: StoreReader,
    *,
    exercise: bool,
    after: int,
    poll_s: float,
    site_name: Callable[[str], str],
    still_allowed: Callable[[], bool] = lambda: True,
) -> AsyncGenerator[ServerSentEvent, None]:
    """Events for incidents changed after change id `after`, forever (until the client goes or loses access).

    Args:
        reader: the store.
        exercise: True for the training queue's incidents, False for the live queue's.
        after: the change id to start after.
        poll_s: seconds between polls when nothing changed.
        site_name: a site's name for people.
        still_allowed: whether the user may still watch (checked every minute, on a worker thread).
    """
    checked_at = anyio.current_time()
    while True:
        rows = await anyio.to_thread.run_sync(reader.changed_incidents, after, BATCH)
        for row in rows:
            after = max(after, row.change)
            if row.exercise == exercise:
                data = json.dumps(incident_event_data(row, site_name(row.site_id)), ensure_ascii=False)
                yield ServerSentEvent(data=data, event="incident", id=str(row.change))
        if anyio.current_time() - checked_at >= USER_CHECK_S:
            if not await anyio.to_thread.run_sync(still_allowed):
                return
            checked_at = anyio.current_time()
        if len(rows) < BATCH:
            await anyio.sleep(poll_s)


def _start(request: Request, after: int | None) -> int | None:
    text = request.headers.get("last-event-id", "")
    if text.isdigit():
        return int(text)
    return after if after is not None and after >= 0 else None


@router.get("/events")
async def events(
    request: Request, console: Console, user: Viewer, exercise: bool = False, after: int | None = None
) -> EventSourceResponse:
    start = _start(request, after)
    if start is None:
        start = await anyio.to_thread.run_sync(console.reader.last_change)

    def still_allowed() -> bool:
        row = console.users.get(user.name)
        return row is not None and not row.disabled

    stream = incident_events(
        console.reader,
        exercise=exercise,
        after=start,
        poll_s=console.live_poll_s,
        site_name=console.site_name,
        still_allowed=still_allowed,
    )
    return EventSourceResponse(stream, ping=PING_S)
