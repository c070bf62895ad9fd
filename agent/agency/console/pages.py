"""The console's pages for people: live queue, training queue, incident, sites, map and search.

Each route is a small function: read from the store, shape for the page,
render. They are plain `def`s, so FastAPI runs them on its thread pool and
a slow database query never blocks the event loop that serves the live
stream. Every role may view every page here; what a user may change is
decided where the change is made (`status_actions`, `admin_pages`).
"""

from __future__ import annotations

__all__ = ["SEARCH_LIMIT", "router"]

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from agent.agency.console.auth import Sender, Viewer
from agent.agency.console.context import Console, ConsoleContext
from agent.agency.console.incident_timeline import key_ids, latest_snapshot, pretty_payload, timeline
from agent.agency.console.search_form import STATES, SearchError, read_form, search_filter
from agent.agency.console.site_overview import site_overviews
from agent.agency.console.status_actions import StatusRefused
from agent.agency.console.templating import flash, incident_path
from agent.agency.store import IncidentRow
from agent.agency.store.tables import SEVERITY_RANK
from agent.alerts.status import DISPOSITIONS

router = APIRouter(include_in_schema=False)
SEARCH_LIMIT = 200


def _queue(request: Request, console: ConsoleContext, *, exercise: bool) -> Response:
    # The change id first: whatever changes after it reaches the page through the live stream.
    last_change = console.reader.last_change()
    rows = console.reader.queue(exercise=exercise)
    return console.templates.TemplateResponse(
        request,
        "queue.html",
        {
            "rows": rows,
            "exercise": exercise,
            "last_change": last_change,
            "events_url": f"/events?exercise={'true' if exercise else 'false'}",
            "site_name": console.site_name,
        },
    )


@router.get("/")
def live_queue(request: Request, console: Console, user: Viewer) -> Response:
    return _queue(request, console, exercise=False)


@router.get("/training")
def training_queue(request: Request, console: Console, user: Viewer) -> Response:
    return _queue(request, console, exercise=True)


def _incident_or_404(console: ConsoleContext, site_id: str, incident_id: str) -> IncidentRow:
    incident = console.reader.incident(site_id, incident_id)
    if incident is None:
        raise HTTPException(404, f"no incident {incident_id} of site {site_id}")
    return incident


@router.get("/incidents/{site_id}/{incident_id}")
def incident_page(request: Request, console: Console, user: Viewer, site_id: str, incident_id: str) -> Response:
    incident = _incident_or_404(console, site_id, incident_id)
    alerts = console.reader.incident_alerts(site_id, incident_id)
    statuses = console.reader.incident_statuses(site_id, incident_id)
    return console.templates.TemplateResponse(
        request,
        "incident.html",
        {
            "incident": incident,
            "entries": timeline(alerts, statuses),
            "snapshot": latest_snapshot(alerts),
            "kids": key_ids(alerts),
            "site_name": console.site_name(site_id),
            "registered": site_id in console.registry.sites,
            "latest_payload": pretty_payload(alerts[-1]) if alerts else "",
            "allowed": console.statuses.allowed(user.role),
            "disabled_reason": console.statuses.disabled_reason,
            "dispositions": DISPOSITIONS,
            "status_path": incident_path(site_id, incident_id) + "/status",
        },
    )


@router.post("/incidents/{site_id}/{incident_id}/status")
def send_status(
    request: Request,
    console: Console,
    user: Sender,
    site_id: str,
    incident_id: str,
    status: Annotated[str, Form()] = "",
    disposition: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    validation_level: Annotated[str, Form()] = "",
) -> Response:
    incident = _incident_or_404(console, site_id, incident_id)
    try:
        result = console.statuses.send(
            operator=user.name,
            role=user.role,
            incident=incident,
            status=status,
            disposition=disposition,
            note=note,
            level=int(validation_level) if validation_level in ("3", "4") else None,
        )
    except StatusRefused as err:
        if err.http_status == 403:
            raise HTTPException(403, str(err)) from None
        flash(request, "error", f"Not sent: {err}")
    else:
        what = result.status + (f" ({result.disposition})" if result.disposition else "")
        if result.published:
            flash(request, "ok", f"{what} sent to site {site_id}.")
        else:
            flash(request, "error", f"{what} was not published: {result.error}")
    return RedirectResponse(incident_path(site_id, incident_id), 303)


@router.get("/sites")
def sites_page(request: Request, console: Console, user: Viewer) -> Response:
    return console.templates.TemplateResponse(request, "sites.html", {"sites": _overviews(console)})


def _overviews(console: ConsoleContext) -> list[object]:
    now = console.clock()
    return list(
        site_overviews(
            console.registry,
            console.reader.sites(),
            console.reader.alerts_per_site(now - 86400),
            console.reader.site_positions(),
            datetime.fromtimestamp(now, UTC),
        )
    )


@router.get("/map")
def map_page(request: Request, console: Console, user: Viewer) -> Response:
    tile_url = console.config.console.tile_url
    return console.templates.TemplateResponse(
        request,
        "map.html",
        {
            "sites": _overviews(console),
            "incidents": console.reader.queue(exercise=False),
            "leaflet": console.leaflet_dir is not None,
            "tile_url": tile_url or "",
            "tile_attribution": console.config.console.tile_attribution or "",
            "site_name": console.site_name,
        },
    )


@router.get("/search")
def search_page(request: Request, console: Console, user: Viewer) -> Response:
    form, error = read_form(request.query_params), None
    try:
        rows = console.reader.search(search_filter(form), limit=SEARCH_LIMIT)
    except SearchError as err:
        rows, error = [], str(err)
    query = urlencode(form.query())
    return console.templates.TemplateResponse(
        request,
        "search.html",
        {
            "form": form,
            "rows": rows,
            "error": error,
            "limit": SEARCH_LIMIT,
            "export_path": "/export.csv" + (f"?{query}" if query else ""),
            "severities": tuple(SEVERITY_RANK),
            "states": STATES,
            "site_ids": sorted(console.registry.sites),
            "site_name": console.site_name,
        },
        status_code=400 if error else 200,
    )
