"""Receiving side: ingest throughput, publish -> stored row latency, and the console's reads over a full store.

A real Mosquitto on loopback (`max_queued_messages 10000`, as
config/mosquitto/agency-broker.conf sets it) and the real `IngestService` on
its own thread, with a status key, so every stored alert is answered with a
signed `received` on its site's feedback topic. Alerts are real v2 alerts
(`AlertBuilder` output signed with each site's Ed25519 key) of four sites.

1. Throughput: N alerts published QoS 1 as fast as one client goes (100
   awaiting PUBACK), timed until `StoreReader.count_alerts()` reaches N; and
   each step the service runs per alert timed alone, without MQTT:
   `AlertVerifier.check` (alone, then with the store as its duplicate check),
   `StoreWriter.add_alert` on a fresh database, the `received` made and
   signed, `add_status`.
2. Latency at a steady rate: each alert's publish time (`time.time()`) against
   its row's `received_at` and against the arrival of its `received` at a
   subscriber of the feedback topics. One process, one wall clock.
3. The console with 100,000 stored alerts (`benchmarks.console_reads`): the
   `StoreReader` queries it uses, and its pages through Starlette's TestClient,
   median and p95, each query with SQLite's plan.

    python -m benchmarks.bench_ingest            # 2,000 alerts; 300 at 20/s; 100,000 stored
    python -m benchmarks.bench_ingest --quick    # 200; 60; 10,000: a smoke run
"""

from __future__ import annotations

__all__ = ["IngestRun", "Sizes", "collect", "main", "measure", "section"]

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from agent.agency.alert_verifier import AcceptedAlert, AlertVerifier
from agent.agency.ingest import IngestService
from agent.agency.status_sender import StatusSigner
from agent.agency.store import StoreReader, StoreWriter, open_database, sqlite_url
from agent.agency.store.seen import StoredAlerts
from agent.agency.store.tables import alerts
from agent.agency.store.writes import alert_columns
from agent.agency.trust_registry_file import load_registry
from agent.alerts.status import AlertStatus
from agent.delivery.jws import open_envelope
from agent.delivery.topics import feedback_filter
from benchmarks import console_reads
from benchmarks.report import Plot, Section, Table
from tests.agency.receiving_setup import running_ingest, write_receiving_config
from tests.agency.v2_alerts import RECIPIENT, Site, signed_alert, write_registry
from tests.brokers import MosquittoBroker

BROKER_CONF = "max_queued_messages 10000"
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
Item = tuple[str, str, bytes]  # alert id, topic, JWS


@dataclass(frozen=True, slots=True)
class Sizes:
    burst: int  # alerts published as fast as possible
    paced: int  # alerts published at `rate_hz`
    rate_hz: float
    stored: int  # alerts in the console's store
    repeats: int  # timed runs of each query and page


FULL, QUICK = Sizes(2000, 300, 20.0, 100_000, 20), Sizes(200, 60, 20.0, 10_000, 8)


def _ms(samples: Sequence[float], q: Sequence[float]) -> list[float]:
    return [float(v) * 1e3 for v in np.percentile(np.asarray(samples, np.float64), q)] if samples else []


class _Feedback:
    """Every status on the sites' feedback topics, with the wall time it arrived."""

    def __init__(self, port: int, filters: Sequence[str]) -> None:
        self.arrived: list[tuple[float, bytes]] = []
        self._client = _client(port)
        self._client.on_message = lambda c, u, m: self.arrived.append((time.time(), bytes(m.payload)))
        done = threading.Event()
        self._client.on_subscribe = lambda *a: done.set()
        self._client.subscribe([(f, 1) for f in filters])
        if not done.wait(10):
            raise RuntimeError("feedback subscription not acknowledged")

    def by_alert(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for at, payload in list(self.arrived):
            out.setdefault(json.loads(open_envelope(payload).payload)["alert_id"], at)
        return out

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _client(port: int) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(100)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError("no CONNACK from the broker")
    return client


def _alerts(sites: Sequence[Site], count: int, first: int) -> list[Item]:
    """Signed alerts numbered from `first`, the sites taking turns."""
    out = []
    for n in range(first, first + count):
        site = sites[n % len(sites)]
        message = signed_alert(site, n)
        out.append((json.loads(open_envelope(message).payload)["identifier"], site.topic(), message))
    return out


def _wait(done: Callable[[], bool], timeout_s: float, what: str) -> float:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout_s:g} s")
        time.sleep(0.01)
    return time.perf_counter()


def _burst(port: int, service: IngestService, feedback: _Feedback, items: Sequence[Item]) -> tuple[float, ...]:
    """Seconds from the first publish to: the last PUBACK, all rows stored, all statuses back; this process's
    CPU seconds (user and system, all threads) until all were stored."""
    reader, before, back = StoreReader(service.engine), service.counts.stored, len(feedback.arrived)
    client = _client(port)
    try:
        t0, cpu0 = time.perf_counter(), time.process_time()
        infos = [client.publish(topic, message, qos=1) for _, topic, message in items]
        for info in infos:
            info.wait_for_publish(60)
        acked = time.perf_counter()
        stored = _wait(lambda: reader.count_alerts() >= before + len(items), 300, "all alerts stored")
        cpu = time.process_time() - cpu0
        answered = _wait(lambda: len(feedback.arrived) >= back + len(items), 60, "all statuses back")
    finally:
        client.disconnect()
        client.loop_stop()
    return acked - t0, stored - t0, answered - t0, cpu


def _paced(
    port: int, service: IngestService, feedback: _Feedback, items: Sequence[Item], rate_hz: float
) -> tuple[list[float], list[float]]:
    """(publish -> row's received_at, publish -> received status) in seconds, per alert."""
    published: dict[str, float] = {}
    back, client = len(feedback.arrived), _client(port)
    try:
        start = time.monotonic()
        for i, (alert_id, topic, message) in enumerate(items):
            time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))
            published[alert_id] = time.time()
            client.publish(topic, message, qos=1)
        # One `received` per stored alert: counting is enough (parsing them all on each look would load the CPU).
        _wait(lambda: len(feedback.arrived) >= back + len(items), 60, "every paced alert's `received`")
    finally:
        client.disconnect()
        client.loop_stop()
    with service.engine.connect() as c:
        rows = c.execute(select(alerts.c.alert_id, alerts.c.received_at).where(alerts.c.alert_id.in_(published)))
        row_s = [at - published[alert_id] for alert_id, at in rows]
    answered = feedback.by_alert()
    return row_s, [answered[a] - t for a, t in published.items()]


def _per_alert(fn: Callable[[Any], object], items: Sequence[Any]) -> tuple[float, float]:
    """(CPU µs, wall µs) per item, one pass."""
    c0, w0 = time.process_time(), time.perf_counter()
    for item in items:
        fn(item)
    return (time.process_time() - c0) / len(items) * 1e6, (time.perf_counter() - w0) / len(items) * 1e6


def _steps(work: Path, registry_file: Path, items: Sequence[Item]) -> list[tuple[str, float, float]]:
    """Each step the service runs per alert, timed alone on this thread over a fresh store."""
    registry = load_registry(registry_file)
    engine = open_database(sqlite_url(work / "steps.sqlite"))
    writer, signer = StoreWriter(engine), StatusSigner(Ed25519PrivateKey.generate(), RECIPIENT)
    bare, deduped = AlertVerifier(registry, RECIPIENT), AlertVerifier(registry, RECIPIENT, StoredAlerts(engine))
    pairs = [(topic, message) for _, topic, message in items]
    accepted = _accepted(registry_file, items)
    made: list[AlertStatus] = []

    def answer(item: tuple[AcceptedAlert, bytes]) -> None:
        alert = item[0].alert
        status = signer.make(
            site_id=alert.site_id, alert_id=alert.identifier, incident_id=alert.incident_id or "", status="received"
        )
        signer.sign(status)
        made.append(status)

    try:
        # In this order: `answer` makes the statuses that `add_status` then records.
        return [
            ("verify: AlertVerifier.check, no duplicate check", *_per_alert(lambda p: bare.check(*p), pairs)),
            ("verify with the store as duplicate check (as ingest)", *_per_alert(lambda p: deduped.check(*p), pairs)),
            (
                "store: StoreWriter.add_alert (fresh DB, WAL, synchronous=FULL)",
                *_per_alert(lambda a: writer.add_alert(a[0], a[1], time.time()), accepted),
            ),
            ("answer: `received` made and signed (StatusSigner)", *_per_alert(answer, accepted)),
            (
                "record: StoreWriter.add_status(received)",
                *_per_alert(lambda s: writer.add_status(s, published=True), made),
            ),
        ]
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class IngestRun:
    sizes: Sizes
    burst_s: tuple[float, ...]  # first publish -> last PUBACK, all rows stored, all `received` back; CPU s
    rejected: int  # rejected or duplicate messages in the whole run (0 expected)
    steps: tuple[tuple[str, float, float], ...]  # (step, CPU µs, wall µs) per alert
    row_s: tuple[float, ...]  # publish -> row's received_at, per paced alert
    received_s: tuple[float, ...]  # publish -> `received` back, per paced alert
    console: console_reads.ConsoleRun


def _accepted(registry_file: Path, items: Sequence[Item]) -> list[tuple[AcceptedAlert, bytes]]:
    verifier = AlertVerifier(load_registry(registry_file), RECIPIENT)
    return [(verifier.check(topic, message), message) for _, topic, message in items]


def measure(sizes: Sizes) -> IngestRun:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        sites = [Site(f"bench-{name}") for name in ("north", "south", "east", "west")]
        registry_file = write_registry(work / "registry.yaml", sites)
        burst, paced = _alerts(sites, sizes.burst, 1), _alerts(sites, sizes.paced, sizes.burst + 1)
        with MosquittoBroker(work / "broker", extra_conf=BROKER_CONF) as broker:
            assert broker.port is not None
            config = write_receiving_config(work / "rx", broker.port, registry_file)
            feedback = _Feedback(broker.port, [feedback_filter(s.prefix, s.site_id) for s in sites])
            try:
                with running_ingest(config) as service:
                    burst_s = _burst(broker.port, service, feedback, burst)
                    row_s, received_s = _paced(broker.port, service, feedback, paced, sizes.rate_hz)
                    rejected = service.rejected + service.counts.duplicates
            finally:
                feedback.close()
        steps = _steps(work, registry_file, burst)
        templates = [alert_columns(a, m, time.time()) for a, m in _accepted(registry_file, _alerts(sites, 4, 10**6))]
        later = _accepted(registry_file, _alerts(sites, 200, 2 * 10**6))
        engine = open_database(sqlite_url(work / "console.sqlite"))
        try:
            console = console_reads.measure(engine, templates, later, config, total=sizes.stored, repeats=sizes.repeats)
        finally:
            engine.dispose()
    return IngestRun(sizes, burst_s, rejected, tuple(steps), tuple(row_s), tuple(received_s), console)


def _p(values_s: Sequence[float]) -> str:
    q = _ms(values_s, (50, 90, 99))
    return f"{q[0]:.1f} / {q[1]:.1f} / {q[2]:.1f} ms (max {max(values_s) * 1e3:.1f})" if q else "-"


def _ingest_tables(r: IngestRun) -> list[Table]:
    s, (acked, stored, answered, burst_cpu) = r.sizes, r.burst_s
    per_alert_us = stored / s.burst * 1e6
    with_store = r.steps[1:]  # the bare check is in the one with the store as duplicate check
    return [
        Table(
            f"Ingest throughput: {s.burst:,} alerts of 4 sites published at once (QoS 1, loopback Mosquitto, SQLite)",
            ("measure", "value"),
            (
                ("first publish -> last PUBACK from the broker", f"{acked:.2f} s ({s.burst / acked:,.0f} alerts/s)"),
                ("first publish -> all rows stored", f"{stored:.2f} s ({s.burst / stored:,.0f} alerts/s)"),
                ("first publish -> every `received` back", f"{answered:.2f} s ({s.burst / answered:,.0f} alerts/s)"),
                ("wall time per stored alert", f"{per_alert_us:,.0f} µs"),
                (
                    "CPU of this process per stored alert (ingest, publisher, subscriber; user + system)",
                    f"{burst_cpu / s.burst * 1e6:,.0f} µs",
                ),
                ("rejected or duplicate messages (whole run)", str(r.rejected)),
            ),
        ),
        Table(
            f"Where an alert's time goes: each step of the service alone, one thread, no MQTT ({s.burst:,} alerts)",
            ("step", "CPU µs / alert", "wall µs / alert", "% of the burst's wall time per alert"),
            (
                *((name, cpu, wall, 100 * wall / per_alert_us) for name, cpu, wall in r.steps),
                (
                    "sum of the steps the service runs (check with the store, add_alert, received, add_status)",
                    sum(cpu for _, cpu, _ in with_store),
                    sum(wall for _, _, wall in with_store),
                    100 * sum(wall for _, _, wall in with_store) / per_alert_us,
                ),
            ),
            float_digits=0,
        ),
        Table(
            f"Publish -> stored at a steady {s.rate_hz:g} alerts/s ({s.paced} alerts)",
            ("measure", "p50 / p90 / p99"),
            (
                ("publish -> row's received_at", _p(r.row_s)),
                ("publish -> `received` status at a feedback subscriber", _p(r.received_s)),
            ),
        ),
    ]


def section(r: IngestRun) -> Section:
    s, c = r.sizes, r.console
    latency = Plot(
        "ingest_latency.png",
        "line",
        f"Publish -> stored at a steady {s.rate_hz:g} alerts/s: latency by percentile ({s.paced} alerts)",
        tuple(str(q) for q in PERCENTILES),
        (
            ("publish -> row's received_at", tuple(_ms(r.row_s, PERCENTILES))),
            ("publish -> received status back", tuple(_ms(r.received_s, PERCENTILES))),
        ),
        "ms",
        "percentile of alerts",
    )
    slowest = max(c.queries, key=lambda q: q.median_ms)
    wall_us, cpu_us = r.burst_s[1] / s.burst * 1e6, r.burst_s[3] / s.burst * 1e6
    own_us = sum(cpu for _, cpu, _ in r.steps[1:])
    notes = [
        f"In the burst this process spent {cpu_us:,.0f} µs of CPU per stored alert for {wall_us:,.0f} µs of wall "
        f"time: the service's own steps take {own_us:,.0f} µs of it (table above); the rest goes to what runs "
        "beside them in this process: three MQTT clients' network threads (the service's, the publisher's, the "
        "subscriber's) and the polling of the row count.",
        "The ingest service, the publisher and the feedback subscriber share one process (and its GIL); the broker "
        "is its own process. The service stores each alert in one transaction and records its `received` in a "
        "second (SQLite WAL, synchronous=FULL: two fsyncs an alert).",
        "received_at is stamped by the service just before its write, so publish -> row leaves the commit out; "
        "publish -> received holds the commit, the status's signing and recording, and a second broker hop.",
        f"The console store's rows are copies of {c.filled.templates} real accepted alerts (`alert_columns`) with "
        "ids, incident, site, severity, rule, times and position varied; their `data` and `message` stay the "
        f"template's. Through add_alert one at a time they would take {c.filled.alerts * c.add_alert_full_us / 1e6:,.0f} s.",
    ]
    if not isinstance(c.pages, tuple):
        notes.append(f"No console page times ({c.pages}): the store's queries only.")
    return Section(
        "ingest",
        "Receiving side: ingest throughput, publish to row, console pages",
        (*_ingest_tables(r), *console_reads.tables(c, s.repeats)),
        (latency, console_reads.plot(c)),
        tuple(notes),
        headline=(
            ("ingest, alerts stored per second (burst)", f"{s.burst / r.burst_s[1]:,.0f}"),
            ("publish -> row p50 / p99", " / ".join(f"{v:.1f} ms" for v in _ms(r.row_s, (50, 99)))),
            ("publish -> received p50 / p99", " / ".join(f"{v:.1f} ms" for v in _ms(r.received_s, (50, 99)))),
            (f"slowest console query ({c.filled.alerts:,} alerts)", f"{slowest.name}: {slowest.median_ms:.1f} ms"),
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
