"""The export routes: `/export.csv` of a search, `/alerts/{site}/{alert}.cap.xml`, and `/feeds/cap.atom`.

Any logged-in role may export; the feed and the CAP documents also take a
CAD system's HTTP Basic login (`agent.agency.console.feed_auth`). A CSV export and a CAP document fetched are
in the console's audit log (`console_export`, with the filter or the alert);
the Atom feed is polled by CAD systems every minute or so and is not, or it
would bury the people's actions in polls (the web server's access log keeps
them). Limits: 10,000 rows per CSV, the newest 100 alerts in the feed.
"""

from __future__ import annotations

__all__ = ["CSV_LIMIT", "FEED_LIMIT", "router"]

from dataclasses import asdict
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response

from agent.agency.console.auth import Viewer
from agent.agency.console.context import Console
from agent.agency.console.exports import CapUnavailable, alerts_csv, atom_feed, cap_document
from agent.agency.console.feed_auth import FeedReader
from agent.agency.console.search_form import SearchError, read_form, search_filter
from agent.agency.store import AlertFilter, AlertRow

router = APIRouter(include_in_schema=False)
CSV_LIMIT = 10_000
FEED_LIMIT = 100


@router.get("/export.csv")
def export_csv(request: Request, console: Console, user: Viewer) -> Response:
    try:
        where = search_filter(read_form(request.query_params))
    except SearchError as err:
        raise HTTPException(400, str(err)) from None
    rows = console.reader.search(where, limit=CSV_LIMIT)
    console.audit.record_event("console_export", user=user.name, format="csv", filter=asdict(where), rows=len(rows))
    stamp = datetime.fromtimestamp(console.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        alerts_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="alerts-{stamp}.csv"'},
    )


@router.get("/alerts/{site_id}/{alert_id}.cap.xml")
def alert_cap(console: Console, user: FeedReader, site_id: str, alert_id: str) -> Response:
    row = console.reader.alert(site_id, alert_id)
    if row is None:
        raise HTTPException(404, f"no alert {alert_id} of site {site_id}")
    try:
        document = cap_document(row)
    except CapUnavailable as err:
        raise HTTPException(422, str(err)) from None
    console.audit.record_event("console_export", user=user.name, format="cap", site_id=site_id, alert_id=alert_id)
    return Response(document, media_type="application/cap+xml")


@router.get("/feeds/cap.atom")
def cap_feed(request: Request, console: Console, user: FeedReader, exercise: bool = False) -> Response:
    base = str(request.base_url).rstrip("/")
    rows = console.reader.search(AlertFilter(exercise=None if exercise else False), limit=FEED_LIMIT)

    def cap_url(row: AlertRow) -> str:
        return f"{base}/alerts/{quote(row.site_id, safe='')}/{quote(row.alert_id, safe='')}.cap.xml"

    document = atom_feed(
        rows,
        title=f"Alerts received by {console.config.recipient}",
        feed_url=f"{base}/feeds/cap.atom" + ("?exercise=true" if exercise else ""),
        cap_url=cap_url,
        site_name=console.site_name,
        now=console.clock(),
    )
    return Response(document, media_type="application/atom+xml")
