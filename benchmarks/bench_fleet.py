"""Fleet: 1,000 sites into ingest replicas sharing one subscription, on SQLite and on PostgreSQL.

The fleet of the fleet test (tests/agency/fleet.py), bigger: N sites, each
with its own Ed25519 key in the trust registry and its own MQTT connection,
publish signed alerts (QoS 1) through a real Mosquitto (logging warnings
only; `max_queued_messages` raised so a replica's queue holds the whole
burst) to 1 or 2 ingest replicas, real `edge-agent console ingest --replica N`
processes sharing `$share/fleet/...` and one store: an SQLite file (WAL,
synchronous=FULL), or PostgreSQL (a cluster of its own with the durable
defaults: fsync and synchronous_commit on).

1. Throughput: M alerts published as fast as the sites go; alerts/s from the
   first publish to the last row's `received_at`; the CPU seconds each
   process spent (replicas, broker, PostgreSQL with its backends, the
   sites' process) per alert; and SQL's count of rows and distinct keys.
2. Latency at a steady rate: publish -> row (`received_at`, stamped just
   before the write) and publish -> the `received` status back at the site
   (after the commit), p50 / p99.
3. Where the time goes (benchmarks/fleet_steps.py): each step a replica runs
   per alert, alone on one thread, on each store; and the broker alone, the
   same fleet into one subscriber that acknowledges at once.

    python -m benchmarks.bench_fleet            # 1,000 sites; 10,000 alerts; 1,000 at 50/s
    python -m benchmarks.bench_fleet --quick    # 200 sites; 1,000; 300 at 50/s: a smoke run
"""

from __future__ import annotations

__all__ = ["BurstRun", "FleetRun", "PacedRun", "Sizes", "collect", "main", "measure", "section"]

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from sqlalchemy import Engine, func, select

from agent.agency.store import open_database, sqlite_url
from agent.agency.store.tables import alerts
from benchmarks import fleet_steps
from benchmarks.report import Plot, Section, Table
from tests.agency.fleet import Fleet, IngestReplica, SiteConnections, ingest_fleet, store_check
from tests.pg import PostgresServer

# The burst waits in the replicas' sessions: the broker must be let hold all of it (10,000 by default).
BROKER_CONF = "max_queued_messages 100000"
STORES = ("SQLite", "PostgreSQL")
REPLICAS = (1, 2)


@dataclass(frozen=True, slots=True)
class Sizes:
    sites: int
    burst: int
    paced: int
    rate_hz: float
    steps: int  # alerts through each step alone


FULL, QUICK = Sizes(1000, 10_000, 1_000, 50.0, 1_000), Sizes(200, 1_000, 300, 50.0, 200)


@dataclass(frozen=True, slots=True)
class BurstRun:
    store: str
    replicas: int
    alerts: int
    stored_s: float  # first publish -> the last row's received_at
    acked_s: float  # first publish -> the last PUBACK to a site
    cpu_s: tuple[tuple[str, float], ...]  # (process kind, CPU seconds) over the run
    rows: int
    keys: int

    @property
    def rate(self) -> float:
        return self.alerts / self.stored_s


@dataclass(frozen=True, slots=True)
class PacedRun:
    store: str
    replicas: int
    row_s: tuple[float, ...]
    received_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class FleetRun:
    sizes: Sizes
    bursts: tuple[BurstRun, ...]
    paced: tuple[PacedRun, ...]
    steps: fleet_steps.Steps


def _cpu(pids: Sequence[int], with_children: bool = False) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)] if with_children else [proc]
            for p in procs:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def _replica_threads(pids: Sequence[int]) -> tuple[float, float]:
    """CPU seconds of the replicas' main threads (the store, the answer) and of their other threads (paho's
    network thread: receiving, verifying, the duplicate check, acknowledging)."""
    main = other = 0.0
    for pid in pids:
        try:
            for t in psutil.Process(pid).threads():
                if t.id == pid:
                    main += t.user_time + t.system_time
                else:
                    other += t.user_time + t.system_time
        except psutil.Error:
            continue
    return main, other


class _CpuMeter:
    """CPU seconds per process kind between `start` and `stop`."""

    KINDS = ("replica: store thread", "replica: MQTT thread", "broker", "PostgreSQL", "sites (this process)")

    def __init__(self, replicas: Sequence[IngestReplica], broker_pid: int, postgres_pid: int | None) -> None:
        self._replicas = [r.proc.pid for r in replicas if r.proc is not None]
        self._broker, self._postgres = [broker_pid], [postgres_pid] if postgres_pid else []
        self._before: tuple[float, ...] = ()

    def _now(self) -> tuple[float, ...]:
        main, other = _replica_threads(self._replicas)
        return main, other, _cpu(self._broker), _cpu(self._postgres, True), time.process_time()

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> tuple[tuple[str, float], ...]:
        return tuple((k, a - b) for k, a, b in zip(self.KINDS, self._now(), self._before, strict=True))


def _last_row(engine: Engine, count: int, connections: SiteConnections, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    with engine.connect() as c:
        while int(c.execute(select(func.count()).select_from(alerts)).scalar_one()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {count} alerts stored within {timeout_s:g} s")
            connections.pump(0.1)
            c.rollback()
        return float(c.execute(select(func.max(alerts.c.received_at))).scalar_one())


def _run_store(
    work: Path, fleet: Fleet, registry: Path, url: str, replicas: int, s: Sizes, pg: PostgresServer | None, first: int
) -> tuple[BurstRun, PacedRun]:
    engine = open_database(url)
    burst, paced = fleet.alerts(s.burst, first), fleet.alerts(s.paced, first + s.burst)
    store = "PostgreSQL" if pg is not None else "SQLite"
    with ingest_fleet(work, registry, url, replicas, broker_conf=BROKER_CONF, broker_log_all=False) as (b, _, running):
        broker_pid = b._proc.pid if b._proc is not None else 0  # the broker's own process, for its CPU
        pg_pid = pg._proc.pid if pg is not None and pg._proc is not None else None
        with SiteConnections(b.port or 0, fleet.sites) as connections:
            meter = _CpuMeter(running, broker_pid, pg_pid)
            meter.start()
            t0 = time.time()
            connections.publish(burst, 0)
            acked = time.time() - t0
            last = _last_row(engine, s.burst, connections, 600)
            cpu = meter.stop()
            connections.wait_received(s.burst, 60)
            check = store_check(engine)
            everything = connections.publish(paced, s.rate_hz).sent
            sent = {alert_id: everything[alert_id] for _, alert_id, _, _ in paced}
            _last_row(engine, s.burst + s.paced, connections, 120)
            connections.wait_received(s.burst + s.paced, 60)
            back = dict(connections.published.received)
    with engine.connect() as c:
        rows = c.execute(select(alerts.c.alert_id, alerts.c.received_at).where(alerts.c.alert_id.in_(list(sent))))
        row_s = tuple(at - sent[alert_id] for alert_id, at in rows)
    engine.dispose()
    received_s = tuple(back[a] - t for a, t in sent.items() if a in back)
    return (
        BurstRun(store, replicas, s.burst, last - t0, acked, cpu, check.rows, check.keys),
        PacedRun(store, replicas, row_s, received_s),
    )


def measure(sizes: Sizes) -> FleetRun:
    bursts: list[BurstRun] = []
    paced: list[PacedRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, PostgresServer(durable=True) as pg:
        work = Path(tmp)
        fleet = Fleet(sizes.sites)
        registry = fleet.write_registry(work / "registry.yaml")
        first = 1
        for store in STORES:
            for replicas in REPLICAS:
                run_dir = work / f"{store.lower()}-{replicas}"
                url = pg.create_database() if store == "PostgreSQL" else sqlite_url(run_dir / "receiving.sqlite")
                b, p = _run_store(
                    run_dir, fleet, registry, url, replicas, sizes, pg if store == "PostgreSQL" else None, first
                )
                bursts.append(b)
                paced.append(p)
                first += sizes.burst + sizes.paced
        steps = fleet_steps.measure(work / "steps", fleet, registry, pg, sizes.steps)
    return FleetRun(sizes, tuple(bursts), tuple(paced), steps)


def _ms(values_s: Sequence[float], q: Sequence[float]) -> list[float]:
    return [float(v) * 1e3 for v in np.percentile(np.asarray(values_s, np.float64), q)] if values_s else []


def _p50_p99(values_s: Sequence[float]) -> str:
    q = _ms(values_s, (50, 99))
    return f"{q[0]:.1f} / {q[1]:.1f} ms" if q else "-"


def _tables(r: FleetRun) -> list[Table]:
    s = r.sizes
    kinds = [k for k, _ in r.bursts[0].cpu_s]
    throughput = Table(
        f"Alerts stored per second: {s.burst:,} alerts from {s.sites:,} sites published at once (QoS 1)",
        (
            "store",
            "replicas",
            "alerts/s stored",
            "first publish -> last PUBACK (s)",
            *(f"CPU ms/alert: {k}" for k in kinds),
            "rows = distinct = published",
        ),
        tuple(
            (
                b.store,
                b.replicas,
                f"{b.rate:,.0f}",
                b.acked_s,
                *(cpu / b.alerts * 1e3 for _, cpu in b.cpu_s),
                "yes" if b.rows == b.keys == b.alerts else f"NO: {b.rows} rows, {b.keys} keys",
            )
            for b in r.bursts
        ),
        float_digits=2,
    )
    latency = Table(
        f"Publish -> stored at a steady {s.rate_hz:g} alerts/s ({s.paced:,} alerts)",
        ("store", "replicas", "publish -> row p50 / p99", "publish -> `received` at the site p50 / p99"),
        tuple((p.store, p.replicas, _p50_p99(p.row_s), _p50_p99(p.received_s)) for p in r.paced),
    )
    return [throughput, latency, *fleet_steps.tables(r.steps)]


def _bottleneck(r: FleetRun) -> str:
    cores = psutil.cpu_count() or 1
    lines = []
    for b in r.bursts:
        cpu = dict(b.cpu_s)
        busy = sum(cpu.values()) / b.stored_s
        top = max(cpu, key=lambda k: cpu[k])
        lines.append(
            f"{b.store} x{b.replicas}: {busy:.1f} of {cores} cores busy, most in {top} "
            f"({cpu[top] / b.alerts * 1e3:.2f} ms/alert)"
        )
    return (
        "Bottleneck, from the CPU each process spent during the bursts: "
        + "; ".join(lines)
        + ". "
        + fleet_steps.verdict(r.steps, r.bursts[0].cpu_s, r.bursts[0].alerts)
    )


def section(r: FleetRun) -> Section:
    by = {(b.store, b.replicas): b for b in r.bursts}
    labels = tuple(f"{n} replica{'s' if n > 1 else ''}" for n in REPLICAS)
    rates = Plot(
        "fleet_throughput.png",
        "bar",
        f"Alerts stored per second, {r.sizes.sites:,} sites, {r.sizes.burst:,} alerts at once",
        labels,
        tuple((store, tuple(by[(store, n)].rate for n in REPLICAS)) for store in STORES),
        "alerts/s stored",
        "ingest replicas sharing one subscription",
    )
    percentiles = (50, 90, 99)
    latency = Plot(
        "fleet_latency.png",
        "bar",
        f"Publish -> `received` back at the site at {r.sizes.rate_hz:g} alerts/s",
        tuple(f"p{q}" for q in percentiles),
        tuple((f"{p.store} x{p.replicas}", tuple(_ms(p.received_s, percentiles))) for p in r.paced),
        "ms",
    )
    notes = (
        _bottleneck(r),
        "Every site is its own MQTT connection and all of them are driven by one thread of the benchmark's process, "
        "which also receives the `received` statuses; the broker, the replicas and PostgreSQL are processes of "
        "their own, all on this one machine.",
        "received_at is stamped by the replica just before its write, so publish -> row leaves the commit out; "
        "publish -> received holds the commit, the status's signing and a second trip through the broker.",
        "Mosquitto deals each site's alerts round the group in turn (one shared subscription per site filter), so "
        "with two replicas each stores about half.",
    )
    pg2, sq1 = by[("PostgreSQL", 2)], by[("SQLite", 1)]
    received_pg2 = next(p for p in r.paced if (p.store, p.replicas) == ("PostgreSQL", 2))
    return Section(
        "fleet",
        "Fleet: 1,000 sites into ingest replicas, SQLite and PostgreSQL",
        tuple(_tables(r)),
        (rates, latency),
        notes,
        headline=(
            ("fleet: alerts/s stored, SQLite x1 / PostgreSQL x2", f"{sq1.rate:,.0f} / {pg2.rate:,.0f}"),
            ("fleet: publish -> received p50 / p99 (PostgreSQL x2)", _p50_p99(received_pg2.received_s)),
        ),
    )


def collect(quick: bool = False) -> Section:
    return section(measure(QUICK if quick else FULL))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subsets: a smoke run, not numbers to quote")
    args = parser.parse_args(argv)
    from benchmarks.report import print_section

    print_section(collect(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
