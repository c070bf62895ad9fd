"""The fleet benchmark's split of an alert's cost: each step a replica runs, alone, on each store; the broker alone.

Steps, one thread, no MQTT, over the fleet's own signed alerts: the
signature and schema check (`AlertVerifier.check` without a duplicate
check), the duplicate check against the store (`StoredAlerts.contains`),
`StoreWriter.add_alert`, the `received` made and signed, and
`StoreWriter.add_status`, each on a fresh SQLite file and a fresh PostgreSQL
database. The broker alone: the same sites publishing at once into one
subscriber of the same shared filters that acknowledges each message as it
comes and does nothing else, so its rate is what Mosquitto and paho carry
without verification or a database.
"""

from __future__ import annotations

__all__ = ["Steps", "measure", "tables", "verdict"]

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from agent.agency.alert_verifier import AcceptedAlert, AlertVerifier
from agent.agency.status_sender import StatusSigner
from agent.agency.store import StoreWriter, open_database, sqlite_url
from agent.agency.store.seen import StoredAlerts
from agent.agency.trust_registry_file import load_registry
from agent.alerts.status import AlertStatus
from benchmarks.report import Table
from tests.agency.fleet import Fleet, SiteConnections
from tests.agency.v2_alerts import RECIPIENT
from tests.brokers import MosquittoBroker
from tests.pg import PostgresServer

Cost = tuple[float, float]  # (CPU µs, wall µs) per alert


@dataclass(frozen=True, slots=True)
class Steps:
    verify: Cost
    sign: Cost
    stores: tuple[tuple[str, Cost, Cost, Cost], ...]  # (store, contains, add_alert, add_status)
    broker_rate: float  # messages/s through the broker into one subscriber that only acknowledges
    broker_alerts: int


def _per_item(fn: Callable[[Any], object], items: Sequence[Any]) -> Cost:
    c0, w0 = time.process_time(), time.perf_counter()
    for item in items:
        fn(item)
    n = max(1, len(items))
    return (time.process_time() - c0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6


def _store_steps(url: str, accepted: Sequence[tuple[AcceptedAlert, bytes]], made: Sequence[AlertStatus]) -> tuple:
    engine = open_database(url)
    try:
        seen, writer = StoredAlerts(engine), StoreWriter(engine)
        keys = [(a.site.site_id, a.alert.identifier) for a, _ in accepted]
        add = _per_item(lambda a: writer.add_alert(a[0], a[1], time.time()), accepted)
        contains = _per_item(lambda k: seen.contains(*k), keys)
        status = _per_item(lambda s: writer.add_status(s, published=True), made)
    finally:
        engine.dispose()
    return contains, add, status


def _broker_rate(work: Path, fleet: Fleet, registry_file: Path, count: int) -> float:
    items = fleet.alerts(count, first=2 * 10**7)
    filters = [f"$share/fleet/{f}" for f in load_registry(registry_file).alert_filters()]
    broker = MosquittoBroker(work / "broker", extra_conf="max_queued_messages 100000")
    broker.conf_file.write_text(broker.conf_file.read_text().replace("log_type all", "log_type error"))
    got, done, subscribed = [0], threading.Event(), threading.Event()

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        got[0] += 1
        if got[0] >= count:
            done.set()

    with broker:
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv5)
        sub.on_message = on_message
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.connect("127.0.0.1", broker.port or 0)
        sub.loop_start()
        sub.subscribe([(f, 1) for f in filters])
        subscribed.wait(30)
        try:
            with SiteConnections(broker.port or 0, fleet.sites, feedback=False) as sites:
                t0 = time.perf_counter()
                sites.publish(items, 0)
                if not done.wait(300):
                    raise RuntimeError(f"the bare subscriber got {got[0]} of {count}")
                return count / (time.perf_counter() - t0)
        finally:
            sub.disconnect()
            sub.loop_stop()


def measure(work: Path, fleet: Fleet, registry_file: Path, pg: PostgresServer, count: int) -> Steps:
    registry = load_registry(registry_file)
    items = fleet.alerts(count, first=10**7)
    bare = AlertVerifier(registry, RECIPIENT)
    pairs = [(topic, message) for _, _, topic, message in items]
    verify = _per_item(lambda p: bare.check(*p), pairs)
    accepted = [(bare.check(topic, message), message) for topic, message in pairs]
    signer = StatusSigner(Ed25519PrivateKey.generate(), RECIPIENT)
    made: list[AlertStatus] = []

    def answer(item: tuple[AcceptedAlert, bytes]) -> None:
        alert = item[0].alert
        status = signer.make(
            site_id=alert.site_id, alert_id=alert.identifier, incident_id=alert.incident_id or "", status="received"
        )
        signer.sign(status)
        made.append(status)

    sign = _per_item(answer, accepted)
    stores = (
        ("SQLite", *_store_steps(sqlite_url(work / "steps.sqlite"), accepted, made)),
        ("PostgreSQL", *_store_steps(pg.create_database(), accepted, made)),
    )
    burst = max(count * 5, 1000)
    return Steps(verify, sign, stores, _broker_rate(work, fleet, registry_file, burst), burst)


def tables(s: Steps) -> list[Table]:
    rows: list[tuple[Any, ...]] = [
        ("verify: AlertVerifier.check (signature, site, topic, schema, freshness)", *s.verify, *s.verify)
    ]
    by = {store: (contains, add, status) for store, contains, add, status in s.stores}
    names = (
        "duplicate check: StoredAlerts.contains",
        "store: StoreWriter.add_alert (one transaction)",
        "record: StoreWriter.add_status(received)",
    )
    for i, name in enumerate(names):
        rows.append((name, *by["SQLite"][i], *by["PostgreSQL"][i]))
    rows.insert(3, ("answer: `received` made and signed", *s.sign, *s.sign))
    total = [sum(r[j] for r in rows) for j in range(1, 5)]
    rows.append(("all of a replica's steps for one alert", *total))
    return [
        Table(
            "Where an alert's time goes: each step alone, one thread, no MQTT",
            ("step", "SQLite CPU µs", "SQLite wall µs", "PostgreSQL CPU µs", "PostgreSQL wall µs"),
            tuple(rows),
            float_digits=0,
        ),
        Table(
            "The broker alone: the same sites publishing at once into one subscriber that only acknowledges",
            ("measure", "value"),
            (
                (
                    "messages/s through Mosquitto (shared filters, QoS 1)",
                    f"{s.broker_rate:,.0f} ({s.broker_alerts:,} messages)",
                ),
            ),
        ),
    ]


def verdict(s: Steps, cpu_s: Sequence[tuple[str, float]], alerts: int) -> str:
    """One sentence on the bottleneck, from the steps and one burst's CPU per process (SQLite, 1 replica)."""
    by = {store: (contains, add, status) for store, contains, add, status in s.stores}
    cpu = dict(cpu_s)
    store_ms, mqtt_ms = (cpu[k] / alerts * 1e3 for k in ("replica: store thread", "replica: MQTT thread"))
    steps = {
        "verification": s.verify[1],
        "signing `received`": s.sign[1],
        **{f"{store} (check, write, record)": sum(c[1] for c in costs) for store, costs in by.items()},
    }
    ceiling = {name: 1e6 / us for name, us in steps.items()}
    parts = ", ".join(f"{name} {us:,.0f} µs ({ceiling[name]:,.0f}/s)" for name, us in steps.items())
    store_steps = sum(c[0] for c in by["SQLite"][1:]) + s.sign[0]
    mqtt_steps = s.verify[0] + by["SQLite"][0][0]
    return (
        f"Alone on one core: {parts}; the broker alone carries {s.broker_rate:,.0f} messages/s. In the burst "
        f"(SQLite, one replica) a replica's store thread spent {store_ms:.2f} ms of CPU per alert, where its "
        f"steps alone take {store_steps / 1e3:.2f} ms, and its MQTT thread {mqtt_ms:.2f} ms, where verification "
        f"and the duplicate check alone take {mqtt_steps / 1e3:.2f} ms: the rest is the two threads contending "
        "for the interpreter, paho's packet handling, the hand-over queue and one log line per alert."
    )
