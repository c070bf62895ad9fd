"""The console's JSON API, for programs (and people with `curl`): the same data as the pages.

Authentication is the console session (log in at `/login`; send the session
cookie). Every role may read, the auditor included; only an analyst or an
operator may send a status, with the session's CSRF token in the
`X-CSRF-Token` header (the pages carry it in `<meta name="csrf-token">`).
Not logged in: 401; wrong role or missing token: 403; errors are
`{"detail": "..."}`. Times are seconds since the epoch (UTC) as numbers;
text fields from alerts are the sites' text, unescaped: a program that puts
them in HTML escapes them.

Routes:

- `GET /api/incidents?exercise=false`: open incidents, the live queue's
  order (unacknowledged first, severity, validation level, newest);
  `exercise=true` gives the training queue (exercise incidents only).
- `GET /api/incidents/{site_id}/{incident_id}`: `{"incident": ...,
  "alerts": [...], "statuses": [...]}`: the incident, its alerts oldest first
  (each with `data`, the signed payload's JSON text, and `message`, the JWS
  exactly as it arrived, verifiable with the site's registered key), and the
  statuses this recipient sent about it (`published`, else `error`).
- `GET /api/alerts?from=&to=&site=&rule=&severity=&state=&exercise=&limit=&offset=`:
  stored alerts, newest first, filtered as on `/search` (`from`/`to`: ISO
  date or time, UTC without an offset; `state`: the incident's;
  `exercise`: `true` includes exercise alerts, `only` nothing else); `limit`
  1..1000 (default 100).
- `GET /api/sites`: every site, registered or heard from: state and since
  when, cameras and frame rates from the last stats, outbox depth, key
  windows, alerts of the last day, position (its last alert's).
- `POST /api/incidents/{site_id}/{incident_id}/status` with
  `{"status": "acknowledged", "disposition": null, "note": null}`: signs and
  sends the status about the incident's newest alert. 200 with
  `{"status_id", "status", "disposition", "published": true, "error": null}`;
  502 with `published: false` and the `error` when the broker did not take
  it (it is recorded either way); 409 when the console has no status key;
  422 for a value the status schema refuses (`closed` needs a disposition:
  confirmed, false_alarm, unfounded, test).
- `GET /api/openapi.json`: the OpenAPI 3 description of these routes.

CAP 1.2 XML of one alert is at `/alerts/{site_id}/{alert_id}.cap.xml` and an
Atom feed of recent alerts, each linking to its CAP document, at
`/feeds/cap.atom` (`?exercise=true` includes exercise alerts).
"""

from __future__ import annotations

__all__ = ["IncidentDetail", "StatusRequest", "router"]

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.agency.console.auth import Sender, Viewer
from agent.agency.console.context import Console
from agent.agency.console.search_form import SearchError, SearchForm, search_filter
from agent.agency.console.site_overview import SiteOverview, site_overviews
from agent.agency.console.status_actions import StatusRefused, StatusResult
from agent.agency.store import AlertRow, IncidentRow, StatusRow
from agent.alerts.status import DISPOSITIONS, STATUS_KINDS

router = APIRouter(prefix="/api", tags=["console"])
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """One incident with its alerts (oldest first) and the statuses sent about it."""

    incident: IncidentRow
    alerts: list[AlertRow]
    statuses: list[StatusRow]


class StatusRequest(BaseModel):
    """A status to send about an incident's newest alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str = Field(description=f"one of {', '.join(STATUS_KINDS[1:])} (as the role allows)", max_length=32)
    disposition: str | None = Field(default=None, description=f"with closed: {', '.join(DISPOSITIONS)}", max_length=32)
    note: str | None = Field(default=None, description="free text for the site", max_length=500)
    validation_level: Literal[3, 4] | None = Field(
        default=None, description="with verified: 3 a threat to property, 4 a threat to life (default 3)"
    )


@router.get("/incidents", response_model=list[IncidentRow])
def incidents(console: Console, user: Viewer, exercise: bool = False) -> list[IncidentRow]:
    """Open incidents in the queue's order (exercise=true: the training queue)."""
    return console.reader.queue(exercise=exercise)


@router.get("/incidents/{site_id}/{incident_id}", response_model=IncidentDetail)
def incident(console: Console, user: Viewer, site_id: str, incident_id: str) -> IncidentDetail:
    """The incident, its alerts and the statuses sent about it."""
    row = console.reader.incident(site_id, incident_id)
    if row is None:
        raise HTTPException(404, f"no incident {incident_id} of site {site_id}")
    return IncidentDetail(
        row,
        console.reader.incident_alerts(site_id, incident_id),
        console.reader.incident_statuses(site_id, incident_id),
    )


@router.get("/alerts", response_model=list[AlertRow])
def alerts(
    console: Console,
    user: Viewer,
    since: Annotated[str, Query(alias="from", max_length=200)] = "",
    until: Annotated[str, Query(alias="to", max_length=200)] = "",
    site: Annotated[str, Query(max_length=200)] = "",
    rule: Annotated[str, Query(max_length=200)] = "",
    severity: Annotated[str, Query(max_length=32)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    exercise: Annotated[str, Query(max_length=8)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AlertRow]:
    """Stored alerts matching the filter, newest first."""
    try:
        where = search_filter(SearchForm(since, until, site, rule, severity, state, exercise))
    except SearchError as err:
        raise HTTPException(400, str(err)) from None
    return console.reader.search(where, limit=limit, offset=offset)


@router.get("/sites", response_model=list[SiteOverview])
def sites(console: Console, user: Viewer) -> list[SiteOverview]:
    """Every site: health, last stats, keys, alerts of the last day, position."""
    now = console.clock()
    return site_overviews(
        console.registry,
        console.reader.sites(),
        console.reader.alerts_per_site(now - 86400),
        console.reader.site_positions(),
        datetime.fromtimestamp(now, UTC),
    )


@router.post("/incidents/{site_id}/{incident_id}/status", response_model=StatusResult)
def send_status(
    console: Console, user: Sender, site_id: str, incident_id: str, body: StatusRequest
) -> StatusResult | JSONResponse:
    """Sign and send a status about the incident's newest alert (X-CSRF-Token header required)."""
    row = console.reader.incident(site_id, incident_id)
    if row is None:
        raise HTTPException(404, f"no incident {incident_id} of site {site_id}")
    try:
        result = console.statuses.send(
            operator=user.name,
            role=user.role,
            incident=row,
            status=body.status,
            disposition=body.disposition,
            note=body.note,
            level=body.validation_level,
        )
    except StatusRefused as err:
        raise HTTPException(err.http_status, str(err)) from None
    if not result.published:
        return JSONResponse(asdict(result), status_code=502)
    return result


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, user: Viewer) -> dict[str, Any]:
    """The OpenAPI description (behind the login like everything else)."""
    schema: dict[str, Any] = request.app.openapi()
    return schema
