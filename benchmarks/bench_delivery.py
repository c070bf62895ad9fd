"""Delivery benchmark: durable outbox throughput, publish-to-receipt latency, backlog drain time.

Starts a real Mosquitto on a loopback port (via tests/brokers.py) and prints a
table. Run: `python benchmarks/bench_delivery.py [--backlog 10000]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from agent.alerts.builder import AlertBuilder  # noqa: E402
from agent.alerts.ids import Uuid7Factory  # noqa: E402
from agent.config import MqttConfig, OutboxConfig, SiteInfo  # noqa: E402
from agent.delivery.jws import open_envelope  # noqa: E402
from agent.delivery.outbox import OutboundMessage, Outbox  # noqa: E402
from agent.delivery.publisher import MqttPublisher  # noqa: E402
from agent.delivery.signing import AlertSigner, load_or_create_signing_key  # noqa: E402
from benchmarks.report import Plot, Section, Table  # noqa: E402
from tests.agency.v2_alerts import intrusion_event  # noqa: E402
from tests.brokers import MosquittoBroker  # noqa: E402

SITE = "bench"
RECIPIENT = "bench-agency"
TOPIC = f"edge/{SITE}/cam/alerts/yard/{RECIPIENT}"


def _view(sent: datetime) -> dict[str, Any]:
    """One recipient's v2 view of an intrusion alert, as the sharing policy stamps it (every field kept)."""
    site = SiteInfo(id=SITE, name="Bench site", location={"lat": 51.5, "lon": -0.12})  # type: ignore[arg-type]
    event = intrusion_event(1, sent, severity="Moderate")
    alert = AlertBuilder(site, "cam", status="Actual", ids=Uuid7Factory("bench")).build(event)
    view: dict[str, Any] = alert.model_dump(mode="json", exclude_none=True)
    view.update(
        expires=(sent + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        recipient=RECIPIENT,
        agreement=f"{RECIPIENT}-agreement",
    )
    return view


def _alerts(signer: AlertSigner, start: int, count: int) -> list[OutboundMessage]:
    """Alerts `start` .. `start + count - 1` (identifier `bench-<n>`), each signed on its own."""
    view = _view(datetime.now(UTC))
    out = []
    for n in range(start, start + count):
        payload = signer.sign({**view, "identifier": f"bench-{n}"})
        out.append(OutboundMessage.for_payload(TOPIC, payload, 1))
    return out


class _Counter:
    def __init__(self, port: int) -> None:
        self.received: dict[int, float] = {}
        self.cond = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("edge/bench/+/alerts/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        # Arrival is what is timed: the envelope is opened for the alert's number, not verified.
        identifier = json.loads(open_envelope(bytes(msg.payload)).payload)["identifier"]
        n = int(identifier.removeprefix("bench-"))
        with self.cond:
            self.received[n] = time.perf_counter()
            self.cond.notify_all()

    def wait_for(self, count: int, timeout_s: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.received) >= count, timeout_s)


def measure(puts: int, latency_samples: int, backlog: int) -> tuple[list[tuple[str, str]], list[float]]:
    """(table rows, put-to-receipt latency samples in ms) against a real Mosquitto."""
    args = argparse.Namespace(puts=puts, latency_samples=latency_samples, backlog=backlog)
    work = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    signer = AlertSigner(load_or_create_signing_key(work / "key.pem"))
    rows: list[tuple[str, str]] = []

    t = time.perf_counter()
    sign_batch = _alerts(signer, 0, args.puts)
    rows.append(("sign (Ed25519 envelope)", f"{args.puts / (time.perf_counter() - t):,.0f} alerts/s"))
    with Outbox(OutboxConfig(path=work / "put.sqlite", max_messages=10_000_000)) as box:
        t = time.perf_counter()
        for msg in sign_batch:
            box.put(msg)
        rows.append(("outbox put (WAL, synchronous=FULL)", f"{args.puts / (time.perf_counter() - t):,.0f} alerts/s"))

    with MosquittoBroker(work / "broker") as broker:
        assert broker.port is not None
        counter = _Counter(broker.port)
        with (
            Outbox(OutboxConfig(path=work / "lat.sqlite")) as box,
            MqttPublisher(MqttConfig(port=broker.port), "bench", box) as pub,
        ):
            pub.wait_connected(5)
            lat_ms = []
            for i, msg in enumerate(_alerts(signer, 0, args.latency_samples)):
                t = time.perf_counter()
                box.put(msg)
                counter.wait_for(i + 1, 5)
                lat_ms.append((counter.received[i] - t) * 1000)
            q = statistics.quantiles(lat_ms, n=100)
            rows.append(("put -> receipt latency p50 / p99", f"{q[49]:.2f} / {q[98]:.2f} ms"))
        counter.received.clear()
        with Outbox(
            OutboxConfig(path=work / "backlog.sqlite", max_messages=10_000_000, max_bytes=1_000_000_000)
        ) as box:
            for msg in _alerts(signer, 0, args.backlog):
                box.put(msg)
            t = time.perf_counter()
            with MqttPublisher(MqttConfig(port=broker.port), "bench", box) as pub:
                drained = pub.flush(300)
                acked_s = time.perf_counter() - t
            counter.wait_for(args.backlog, 30)
            rows.append(
                (
                    f"drain {args.backlog:,} backlog (all PUBACKs committed)",
                    f"{acked_s:.2f} s ({args.backlog / acked_s:,.0f} msg/s, drained={drained},"
                    f" received={len(counter.received):,})",
                )
            )
        counter.client.disconnect()
        counter.client.loop_stop()
    return rows, lat_ms


def collect(quick: bool = False) -> Section:
    puts, samples, backlog = (300, 100, 1000) if quick else (2000, 500, 10_000)
    rows, lat_ms = measure(puts, samples, backlog)
    q = statistics.quantiles(lat_ms, n=100)
    plot = Plot(
        "delivery_latency.png",
        "box",
        "Outbox put -> subscriber receipt latency (QoS 1, loopback Mosquitto)",
        (),
        (("put -> receipt", tuple(lat_ms)),),
        "ms",
    )
    return Section(
        "delivery",
        "Delivery: outbox and MQTT publisher",
        (Table("Outbox and publisher", ("measure", "value"), tuple(rows)),),
        (plot,),
        notes=(f"{puts} puts, {samples} latency samples, {backlog} backlog.",),
        headline=(
            ("put -> receipt latency p50 / p99", f"{q[49]:.2f} / {q[98]:.2f} ms"),
            ("backlog drain", rows[-1][1].split(" msg/s")[0] + " msg/s)"),
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--puts", type=int, default=2000)
    parser.add_argument("--latency-samples", type=int, default=500)
    parser.add_argument("--backlog", type=int, default=10_000)
    args = parser.parse_args()
    rows, _ = measure(args.puts, args.latency_samples, args.backlog)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
