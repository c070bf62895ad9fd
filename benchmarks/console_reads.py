"""The console's reads over a full receiving store, for `benchmarks.bench_ingest`: fill it, time queries and pages.

`fill` batch-inserts synthetic history into a migrated store: incidents of
1 to 6 alerts (start, updates 15 s apart, end) of 20 sites over 30 days, 3 %
of them exercises, each alert row a copy of a real accepted alert's
`alert_columns` with its ids, incident, site, severity, rule, times and
position changed (its `data` and `message` columns stay the template's).
Incidents are new for their first hour, acknowledged for three more, then
closed, dismissed or (1 %) left dispatched; every alert has its `received`
status, every handled incident one more, and every write its `changes` row,
as the ingest service and the console leave them. One `add_alert` per row
(one fsync each) would take minutes for 100,000.

`measure` times each `StoreReader` query the console uses and, when
`agent.agency.console.app` is there, each page through Starlette's
TestClient after a real login, with SQLite's plan for every query.
"""

from __future__ import annotations

__all__ = ["ConsoleRun", "Filled", "PageTime", "QueryTime", "fill", "measure", "plot", "tables"]

import importlib.util
import random
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, event

from agent.agency.alert_verifier import AcceptedAlert
from agent.agency.receiving_config import load_receiving_config
from agent.agency.store import AlertFilter, StoreReader, StoreWriter
from agent.agency.store.tables import SEVERITY_RANK, alerts, changes, incidents, sites, statuses
from benchmarks.report import Plot, Table

SEVERITIES, SEVERITY_WEIGHTS = ("Extreme", "Severe", "Moderate", "Minor"), (2, 28, 50, 20)
RULES = ("yard", "gate", "fence", "dock")
SITES, DAYS, CHUNK = 20, 30, 5000
# Incident columns its first alert sets (the rest follow its newest alert or the whole incident).
_FROM_FIRST = ("site_id", "incident_id", "severity", "severity_rank", "certainty", "validation_level", "event")
_FROM_FIRST += ("rule", "rule_kind", "zone", "line", "camera_id", "class_name", "sender_name", "has_snapshot")
_USER, _PASSWORD = "bench-analyst", "bench-password-1"
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Filled:
    alerts: int
    incidents: int
    open_incidents: int
    statuses: int
    templates: int
    fill_s: float
    sample: tuple[str, str]  # (site id, incident id) of a recent six-alert incident


@dataclass(frozen=True, slots=True)
class QueryTime:
    name: str
    rows: int | None
    median_ms: float
    p95_ms: float
    plan: str


@dataclass(frozen=True, slots=True)
class PageTime:
    page: str
    http_status: int
    median_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class ConsoleRun:
    filled: Filled
    add_alert_full_us: float
    queries: tuple[QueryTime, ...]
    pages: tuple[PageTime, ...] | str  # str: why no page was timed


def _state(age_s: float, rng: random.Random) -> str:
    if age_s < 3600:
        return "new"
    if age_s < 4 * 3600:
        return "acknowledged"
    return rng.choices(("closed", "dismissed", "dispatched"), (70, 29, 1))[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _incidents(templates: Sequence[Row], total: int, rng: random.Random, now: float) -> list[list[Row]]:
    """`total` alert rows in incidents whose starts are spread evenly over the last DAYS days."""
    sizes: list[int] = []
    made = 0
    while made < total:
        sizes.append(min(rng.randint(1, 6), total - made))
        made += sizes[-1]
    span = DAYS * 86400
    step, out = span / len(sizes), []
    for k, n in enumerate(sizes):
        start = now - span + k * step + rng.uniform(0, step) - 15 * n  # the newest alert just before `now`
        site = rng.randrange(SITES)
        severity, rule = rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0], rng.choice(RULES)
        shared = {
            **templates[site % len(templates)],
            **{"site_id": f"site-{site:02d}", "incident_id": _uuid(rng), "expires": now + span},
            "cap_status": "Exercise" if rng.random() < 0.03 else "Actual",
            **{"severity": severity, "severity_rank": SEVERITY_RANK[severity]},
            **{"rule": rule, "zone": rule, "sender_name": f"Site {site:02d}"},
            **{"lat": 51.2 + site * 0.02, "lon": -0.6 + site * 0.03},
            "topic": f"edge/site-{site:02d}/cam-7f3a/alerts/{rule}/police-rtcc",
        }
        phases = ["start", *["update"] * (n - 2), "end"] if n > 1 else ["start"]
        out.append(
            [
                {**shared, "alert_id": _uuid(rng), "phase": phase, "sent": start + 15 * j}
                | {"received_at": start + 15 * j + 0.05}
                for j, phase in enumerate(phases)
            ]
        )
    return out


def _status(alert: Row, status: str, at: float) -> Row:
    return {
        **{k: alert[k] for k in ("site_id", "incident_id", "alert_id")},
        **{"status_id": str(uuid.uuid4()), "status": status, "sent": at, "published": True},
        **{"disposition": None, "operator": None if status == "received" else _USER, "note": None, "error": None},
    }


def _incident(group: Sequence[Row], state: str, change: int) -> Row:
    first, last = group[0], group[-1]
    return {
        **{k: first[k] for k in _FROM_FIRST},
        **{"exercise": first["cap_status"] == "Exercise", "opened": first["sent"], "updated": last["sent"]},
        **{k: last[k] for k in ("phase", "headline", "lat", "lon", "expires")},
        "ended": last["sent"] if last["phase"] == "end" else None,
        **{"alert_count": len(group), "last_alert_id": last["alert_id"], "state": state},
        **{"acknowledged": state != "new", "change": change},
    }


def fill(engine: Engine, templates: Sequence[Row], total: int, seed: int = 7) -> Filled:
    """Insert `total` alerts with their incidents, statuses, sites and changes (see the module docstring)."""
    t0, rng, now = time.perf_counter(), random.Random(seed), time.time()
    groups = _incidents(templates, total, rng, now)
    states = [_state(now - g[-1]["sent"], rng) for g in groups]
    rows = sorted((r for g in groups for r in g), key=lambda r: r["sent"])
    status_rows = [_status(r, "received", r["received_at"]) for r in rows]
    events = [(r["received_at"], "alert", r["site_id"], r["incident_id"]) for r in rows]
    for g, state in zip(groups, states, strict=True):
        if state != "new":
            status_rows.append(_status(g[-1], state, g[-1]["sent"] + 60))
            events.append((g[-1]["sent"] + 60, "status", g[-1]["site_id"], g[-1]["incident_id"]))
    events.sort()
    change_rows = [dict(id=i, at=at, kind=k, site_id=s, incident_id=n) for i, (at, k, s, n) in enumerate(events, 1)]
    last_change = {(c["site_id"], c["incident_id"]): c["id"] for c in change_rows}
    incident_rows = [
        _incident(g, state, last_change[(g[0]["site_id"], g[0]["incident_id"])])
        for g, state in zip(groups, states, strict=True)
    ]
    first_at: dict[str, float] = {}
    for r in rows:
        first_at.setdefault(r["site_id"], r["received_at"])
    last_at = {r["site_id"]: r["received_at"] for r in rows}
    site_rows = [
        {"site_id": s, "name": f"Site {s[-2:]}", "state": "online", "state_since": now - 86400, "stats": None}
        | {"stats_at": None, "first_alert_at": first_at[s], "last_alert_at": last_at[s]}
        for s in sorted(first_at)
    ]
    with engine.begin() as c:
        for table, values in (
            (sites, site_rows),
            (alerts, rows),
            (incidents, incident_rows),
            (statuses, status_rows),
            (changes, change_rows),
        ):
            for i in range(0, len(values), CHUNK):
                c.execute(table.insert(), values[i : i + CHUNK])
    sample = next(g for g in reversed(groups) if len(g) == 6)[0]
    open_incidents = sum(s not in ("closed", "dismissed") for s in states)
    return Filled(
        len(rows),
        len(groups),
        open_incidents,
        len(status_rows),
        len(templates),
        time.perf_counter() - t0,
        (sample["site_id"], sample["incident_id"]),
    )


class _LastSql:
    """Keeps the last statement an engine ran, to ask SQLite for its plan; `close` stops listening."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.sql = engine, ("", ())
        event.listen(engine, "before_cursor_execute", self._keep)

    def _keep(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self.sql = (statement, parameters)

    def plan(self) -> str:
        statement, parameters = self.sql
        with self.engine.connect() as c:
            rows = c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "; ".join(str(r[-1]) for r in rows)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._keep)


def _timed(fn: Callable[[], object], repeats: int) -> tuple[object, float, float]:
    """The result of a warm-up call, then the median and p95 ms of `repeats` calls."""
    result, samples = fn(), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    p50, p95 = np.percentile(np.asarray(samples) * 1e3, [50, 95])
    return result, float(p50), float(p95)


def _queries(reader: StoreReader, filled: Filled) -> list[tuple[str, Callable[[], object]]]:
    site, incident = filled.sample
    now, last = time.time(), reader.last_change()
    week = AlertFilter(site_id=site, since=now - 28 * 86400, until=now - 21 * 86400)
    return [
        ("queue", reader.queue),
        ("queue exercise", lambda: reader.queue(exercise=True)),
        ("incident", lambda: reader.incident(site, incident)),
        ("incident_alerts", lambda: reader.incident_alerts(site, incident)),
        ("incident_statuses", lambda: reader.incident_statuses(site, incident)),
        ("search", lambda: reader.search(AlertFilter())),
        ("search site", lambda: reader.search(AlertFilter(site_id=site))),
        ("search site+rule", lambda: reader.search(AlertFilter(site_id=site, rule="gate"))),
        ("search site, a week", lambda: reader.search(week)),
        ("search Extreme", lambda: reader.search(AlertFilter(severity="Extreme"))),
        ("search 24 h", lambda: reader.search(AlertFilter(since=now - 86400, exercise=False))),
        ("search state new", lambda: reader.search(AlertFilter(state="new"))),
        ("search dispatched", lambda: reader.search(AlertFilter(state="dispatched"))),
        ("search verified (none)", lambda: reader.search(AlertFilter(state="verified"))),
        ("search exercise", lambda: reader.search(AlertFilter(exercise=True))),
        ("search offset 900", lambda: reader.search(AlertFilter(), offset=900)),
        ("sites", reader.sites),
        ("changed_incidents", lambda: reader.changed_incidents(last - 50)),
        ("last_change", reader.last_change),
        ("count_alerts", reader.count_alerts),
        # What the sites and map pages read besides `sites`.
        ("alerts_per_site (24 h)", lambda: reader.alerts_per_site(now - 86400)),
        ("site_positions", reader.site_positions),
    ]


def _pages(config_file: Path, engine: Engine, filled: Filled, repeats: int) -> tuple[PageTime, ...]:
    """Each console page for a logged-in analyst (TestClient, in this process)."""
    from starlette.testclient import TestClient

    from agent.agency.console.app import create_app
    from agent.agency.store import UserStore

    UserStore(engine).add(_USER, "analyst", _PASSWORD)
    site, incident = filled.sample
    pages = (
        ("/", "/"),
        ("/incidents/<site>/<id>", f"/incidents/{site}/{incident}"),
        ("/search (site, severity)", f"/search?site={site}&severity=Severe"),
        *((p, p) for p in ("/sites", "/map", "/api/incidents")),
    )
    app = create_app(load_receiving_config(config_file), engine=engine)
    with TestClient(app, base_url="http://127.0.0.1") as web:
        token = re.search(r'name="csrf_token"\s+value="([^"]+)"', web.get("/login").text)
        form = {"username": _USER, "password": _PASSWORD, "csrf_token": token.group(1) if token else ""}
        login = web.post("/login", data=form, follow_redirects=False)
        if login.status_code >= 400:
            raise RuntimeError(f"the console refused the login ({login.status_code})")
        out = []
        for page, path in pages:
            response, p50, p95 = _timed(lambda p=path: web.get(p), repeats)
            out.append(PageTime(page, getattr(response, "status_code", 0), p50, p95))
    return tuple(out)


def measure(
    engine: Engine,
    templates: Sequence[Row],
    later: Sequence[tuple[AcceptedAlert, bytes]],
    config_file: Path,
    *,
    total: int,
    repeats: int,
) -> ConsoleRun:
    """Fill the store behind `engine`, time the reads, then add `later` one by one as the ingest does."""
    filled = fill(engine, templates, total)
    reader, last = StoreReader(engine), _LastSql(engine)
    queries = []
    for name, fn in _queries(reader, filled):
        result, p50, p95 = _timed(fn, repeats)
        queries.append(QueryTime(name, len(result) if isinstance(result, list | dict) else None, p50, p95, last.plan()))
    last.close()
    pages: tuple[PageTime, ...] | str = "agent/agency/console/app.py is not there"
    if importlib.util.find_spec("agent.agency.console.app") is not None:
        try:
            pages = _pages(config_file, engine, filled, repeats)
        except Exception as err:  # noqa: BLE001 - the queries' figures stand without the pages
            pages = f"the console failed: {type(err).__name__}: {err}"
    # Last: each of these opens an incident of its own, which would crowd the queue the reads saw.
    writer, t0 = StoreWriter(engine), time.perf_counter()
    for accepted, message in later:
        writer.add_alert(accepted, message, time.time())
    add_us = (time.perf_counter() - t0) / max(1, len(later)) * 1e6
    return ConsoleRun(filled, add_us, tuple(queries), pages)


def tables(run: ConsoleRun, repeats: int) -> list[Table]:
    f = run.filled
    out = [
        Table(
            f"Console store: {f.alerts:,} alerts batch-inserted",
            ("measure", "value"),
            (
                ("incidents (1-6 alerts, 30 days, 20 sites) / still open", f"{f.incidents:,} / {f.open_incidents:,}"),
                ("statuses (a `received` per alert, one per handled incident)", f"{f.statuses:,}"),
                ("time to build and insert it all", f"{f.fill_s:.1f} s"),
                ("StoreWriter.add_alert into the full store, wall per alert", f"{run.add_alert_full_us:,.0f} µs"),
            ),
        ),
        Table(
            f"Console queries with {f.alerts:,} alerts (StoreReader, {repeats} runs after a warm-up, warm cache)",
            ("query", "rows", "median ms", "p95 ms", "SQLite plan"),
            tuple((q.name, q.rows, q.median_ms, q.p95_ms, q.plan) for q in run.queries),
        ),
    ]
    if isinstance(run.pages, tuple):
        out.append(
            Table(
                f"Console pages with {f.alerts:,} alerts (TestClient, logged in, {repeats} requests after a warm-up)",
                ("page", "HTTP", "median ms", "p95 ms"),
                tuple((p.page, p.http_status, p.median_ms, p.p95_ms) for p in run.pages),
            )
        )
    return out


def plot(run: ConsoleRun) -> Plot:
    """Median and p95 of the pages when they were timed, else of the queries."""
    timed = [(p.page, p.median_ms, p.p95_ms) for p in run.pages] if isinstance(run.pages, tuple) else []
    what = "pages" if timed else "store queries"
    timed = timed or [(q.name, q.median_ms, q.p95_ms) for q in run.queries]
    return Plot(
        "console_reads.png",
        "bar",
        f"Console {what} with {run.filled.alerts:,} stored alerts",
        tuple(name for name, _, _ in timed),
        (("median", tuple(m for _, m, _ in timed)), ("p95", tuple(p for _, _, p in timed))),
        "ms",
    )
