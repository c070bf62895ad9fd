"""The console's page renderer (Jinja2, autoescaping always on) and the page structure browser tests rely on.

Everything an alert carries is untrusted text: templates print it only
through autoescaping (no `|safe` anywhere), and `static/*.js` builds DOM
nodes with `createElement` and `textContent`, never `innerHTML`. Times are
shown in UTC as `YYYY-MM-DD HH:MM:SS`, inside `<time datetime="...Z">`.

Stable hooks (ids, classes, data-* attributes) for browser tests:

Every page (logged in)
    `nav#nav` with `a.nav-link[data-nav=queue|training|sites|map|search|users|registry]`;
    `#whoami[data-role]`; `form#logout-form` with `button#logout`;
    `#flash.flash.flash-ok|flash-error` after an action; `meta[name=csrf-token]`.
Login `/login`
    `form#login-form`, `input#username`, `input#password`, `button#login`; `#login-error`.
Live queue `/` and training `/training`
    `table#queue` (live) or `table#training-queue` (exercise), both `table.queue`
    with `data-exercise`, `data-after` (the change id the page was drawn at) and
    `data-events-url`; rows `tr.incident[data-site-id][data-incident-id][data-state]
    [data-acknowledged][data-severity-rank][data-validation-level][data-updated]`,
    class `unacknowledged` until acknowledged, class `incident-new` on rows the
    live stream added or changed while unacknowledged (the visual cue);
    cells `td.col-updated|col-site|col-event|col-where|col-severity|col-level|col-state|col-count`,
    `a.incident-link`; `#queue-count`; `#queue-empty`; `#live-status[data-state=connecting|live|reconnecting]`;
    `.badge-exercise` on the training page.
Incident `/incidents/{site}/{incident}`
    `#incident[data-site-id][data-incident-id][data-state]`; `#incident-summary` (a `dl`,
    `dd[data-field=...]` per field); `#verification` with `.badge-verified[data-kid][data-site-id]`;
    `img#snapshot` (when shared); `ol#timeline` of `li.timeline-entry`, either
    `li.timeline-alert[data-alert-id][data-phase]` (with `.badge-verified`, `a.cap-link`) or
    `li.timeline-status[data-status-id][data-status][data-published=true|false]`
    (`.status-published`, or `.status-error` with `.status-error-text`);
    `form#status-form` with `button.status-button[data-status=acknowledged|verified|dismissed|
    dispatched|on_scene|closed]` (only the user's role's), `select#disposition`, `textarea#note`;
    `#status-disabled-reason` when statuses cannot be sent (the buttons are `disabled`);
    `#status-not-allowed` for roles that send none; `.badge-unregistered` when the site has left
    the registry; `details#payload` (the newest signed payload).
Sites `/sites`
    `table#sites`, rows `tr.site[data-site-id][data-state=online|offline|stopped|unknown]`,
    `td.col-state .site-state`, `td.col-stats-at`, `td.col-cameras`, `ul.camera-fps li.camera[data-camera-id]`,
    `td.col-outbox`, `td.col-alerts-day`, `ul.keys li.key[data-kid][data-key-state]`.
Map `/map`
    `#map[data-tile-url][data-tile-attribution]` (when Leaflet is installed, else `#map-missing`),
    `#map-no-tiles` without a tile URL; `ul#map-sites li.map-site[data-site-id][data-label][data-href]`
    and `ul#map-incidents li.map-incident[data-site-id][data-incident-id][data-severity][data-label]
    [data-href]`, both with `[data-lat][data-lon]` when the place is known;
    Leaflet markers are SVG paths `path.marker-site` and `path.marker-incident`.
Search `/search`
    `form#search-form` (fields `from`, `to`, `site`, `rule`, `severity`, `state`, `exercise`),
    `button#search`, `#search-error`, `table#results` with `tr.alert-row[data-site-id][data-alert-id]`,
    `#result-count`, `a#export-csv`, `a.cap-link`.
Users `/users`
    `table#users`, `tr.user[data-user-name][data-role][data-disabled]`, `form#add-user`
    (`#new-name`, `#new-role`, `#new-password`, `button#add-user-button`), per row
    `button.disable-user[data-user-name]` or `button.enable-user[data-user-name]` (supervisor only).
Trust registry `/registry`
    `table#registry`, `tr.registry-site[data-site-id]`, `li.key[data-kid][data-key-state=in_force|
    not_yet|expired|revoked]`.
Errors
    `#error[data-status]` with `#error-message`.
"""

from __future__ import annotations

__all__ = ["TEMPLATE_DIR", "cap_path", "console_templates", "flash", "incident_path", "url_part", "utc_text"]

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from starlette.templating import Jinja2Templates

from agent.agency.console.auth import csrf_token
from agent.agency.store.tables import SEVERITY_RANK

TEMPLATE_DIR = Path(__file__).with_name("templates")
_FLASH = "flash"


def utc_text(ts: float | None) -> str:
    """`ts` (seconds since the epoch) as `YYYY-MM-DD HH:MM:SS`, UTC; empty for None."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def utc_iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def url_part(value: object) -> str:
    """One path segment, percent-encoded (ids come from sites and may hold anything)."""
    return quote(str(value), safe="")


def incident_path(site_id: str, incident_id: str) -> str:
    """The incident page's path."""
    return f"/incidents/{url_part(site_id)}/{url_part(incident_id)}"


def cap_path(site_id: str, alert_id: str) -> str:
    """The path of an alert's CAP 1.2 document."""
    return f"/alerts/{url_part(site_id)}/{url_part(alert_id)}.cap.xml"


def severity_class(value: object) -> str:
    """A CSS class for a CAP severity; anything else (untrusted text) is `unknown`."""
    return f"severity-{value.lower()}" if isinstance(value, str) and value in SEVERITY_RANK else "severity-unknown"


def flash(request: Request, kind: str, text: str) -> None:
    """A one-line message for the next page this session sees (`kind`: ok or error)."""
    request.session[_FLASH] = {"kind": "error" if kind == "error" else "ok", "text": text[:1000]}


def _taken_flash(request: Request) -> dict[str, str] | None:
    value = request.session.pop(_FLASH, None)
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return {"kind": "error" if value.get("kind") == "error" else "ok", "text": value["text"]}
    return None


def _page_globals(request: Request) -> dict[str, Any]:
    console = request.app.state.console
    return {
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token(request),
        "flash": _taken_flash(request),
        "recipient": console.config.recipient,
    }


def console_templates(directory: Path = TEMPLATE_DIR) -> Jinja2Templates:
    """The renderer: autoescaping on for every template, a missing variable an error rather than blank."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(utc=utc_text, iso=utc_iso, urlpart=url_part, severity_class=severity_class)
    env.globals.update(incident_path=incident_path, cap_path=cap_path)
    return Jinja2Templates(env=env, context_processors=[_page_globals])
