"""The live queue's event stream: a change written by another process reaches the stream as an event."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import anyio
import pytest

from agent.agency.console.live_queue import incident_events
from agent.agency.store import StoreReader
from tests.console.harness import ConsoleHarness, press_status


async def _first_event(
    harness: ConsoleHarness, *, exercise: bool, after: int, write: Callable[[], None] | None = None
) -> dict[str, object]:
    stream = incident_events(
        StoreReader(harness.engine), exercise=exercise, after=after, poll_s=0.01, site_name=lambda s: f"name of {s}"
    )
    try:
        with anyio.fail_after(10):
            if write is not None:
                threading.Timer(0.2, write).start()  # a write from elsewhere, while the stream waits
            event = await stream.__anext__()
    finally:
        await stream.aclose()
    assert event.event == "incident"
    data: dict[str, object] = json.loads(str(event.data))
    data["_id"] = event.id
    return data


def test_a_new_alert_reaches_a_waiting_stream(harness: ConsoleHarness) -> None:
    after = StoreReader(harness.engine).last_change()
    written: list[str] = []

    def write() -> None:
        written.append(harness.alert(harness.north, 1).incident_id)

    event = anyio.run(lambda: _first_event(harness, exercise=False, after=after, write=write))
    assert event["incident_id"] == written[0]
    assert event["site_name"] == "name of depot-north"
    assert event["url"] == f"/incidents/depot-north/{written[0]}"
    assert event["acknowledged"] is False and event["state"] == "new"
    assert event["_id"] == str(event["change"])


def test_each_stream_gets_only_its_kind_of_incident(harness: ConsoleHarness) -> None:
    harness.alert(harness.north, 1, status="Exercise")
    live = harness.alert(harness.north, 2)
    drill_event = anyio.run(lambda: _first_event(harness, exercise=True, after=0))
    live_event = anyio.run(lambda: _first_event(harness, exercise=False, after=0))
    assert drill_event["exercise"] is True
    assert live_event["incident_id"] == live.incident_id


def test_a_status_sent_changes_the_incident_on_the_stream(harness: ConsoleHarness) -> None:
    row = harness.alert(harness.north)
    after = StoreReader(harness.engine).last_change()
    press_status(harness.login("ana"), f"/incidents/{row.site_id}/{row.incident_id}", status="acknowledged")
    event = anyio.run(lambda: _first_event(harness, exercise=False, after=after))
    assert (event["incident_id"], event["state"], event["acknowledged"]) == (row.incident_id, "acknowledged", True)


@pytest.mark.parametrize("path", ["/events", "/events?exercise=true"])
def test_the_stream_needs_a_login(harness: ConsoleHarness, path: str) -> None:
    assert harness.client().get(path).status_code == 401


def test_the_queue_page_tells_its_script_where_to_start(harness: ConsoleHarness) -> None:
    harness.alert(harness.north)
    page = harness.login("ana").get("/").text
    last = StoreReader(harness.engine).last_change()
    assert f'data-after="{last}" data-events-url="/events?exercise=false"' in page
    assert '<script src="/static/console.js" defer></script>' in page
