"""A real agent process and a recipient answering its alerts: statuses received -> acknowledged ->
dispatched -> closed come back over the broker, are believed, timed and recorded in the site's audit
chain; one signed by a key the site does not know is rejected and recorded too. Seen as an operator sees
it: the stats topic, `edge-agent audit verify`, `edge-agent incidents` and `edge-agent status`."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.delivery.jws import key_id_for
from agent.delivery.topics import feedback_topic
from tests.brokers import MosquittoBroker
from tests.delivery.feedback_site import alert_view, recipient_key, status_bytes, wait_until
from tests.runtime.agent_process import AgentProcess, Subscriber, camera, edge_agent, write_site_config

SITE = "feedback-site"
pytestmark = pytest.mark.broker


class AnsweringRecipient:
    """The police's software: answers every alert at once with `received` and `acknowledged` (from the
    MQTT callback, so the times measured are the round trip's), the first alert also with `dispatched`
    and `closed`; a closed incident's later alerts are not answered."""

    def __init__(self, port: int, key: Ed25519PrivateKey, kid: str) -> None:
        self.key, self.kid = key, kid
        self.views: list[dict] = []
        self.lock = threading.Lock()
        self.closed: set[str] = set()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"edge/{SITE}/+/alerts/+/police", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10)

    def status(
        self, view: dict, kind: str, key: Ed25519PrivateKey | None = None, kid: str | None = None, **extra: object
    ) -> None:
        payload = status_bytes(
            key or self.key,
            kid or self.kid,
            site_id=SITE,
            recipient="police",
            alert_id=view["identifier"],
            incident_id=view["incidents"],
            status=kind,
            **extra,
        )
        self.client.publish(feedback_topic("edge", SITE, "police"), payload, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        view = alert_view(msg.payload)
        with self.lock:
            self.views.append(view)
            if view["incidents"] in self.closed:
                return
            first = len(self.views) == 1
        self.status(view, "received")
        self.status(view, "acknowledged", operator="Sgt Dunn")
        if first:
            self.status(view, "dispatched")
            self.status(view, "closed", disposition="confirmed")
            with self.lock:
                self.closed.add(view["incidents"])

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_status_round_trip_with_a_real_agent(vtest_avi: Path, tmp_path: Path) -> None:
    # As the shipped broker configs do: small packets out at once (no Nagle wait behind a PUBACK).
    broker = MosquittoBroker(tmp_path / "broker", extra_conf="set_tcp_nodelay true").__enter__()
    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_site_config(
        tmp_path / "site.yaml", port=broker.port, site_id=SITE, cameras=[camera("door", str(vtest_avi))]
    )
    doc = yaml.safe_load(config.read_text())
    doc["policies"] = {
        "recipients": [{"name": "police", "feedback_keys": jwk.name}],
        "pseudonym_key_file": "pseudonym.key",
        "audit_log": "audit.jsonl",
    }
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    stranger = Ed25519PrivateKey.generate()
    stats = Subscriber(broker.port, f"edge/{SITE}/stats")
    police = AnsweringRecipient(broker.port, key, kid)
    try:
        with AgentProcess(config) as agent:
            agent.wait_for_log(r"event=subscribed topic_filter=edge/feedback-site/feedback/\+", 60)
            wait_until(lambda: police.views, 90, "an alert at the police")
            first = police.views[0]
            police.status(first, "acknowledged", key=stranger, kid=key_id_for(stranger.public_key()))
            agent.wait_for_log(r"event=feedback_status recipient=police status=closed", 30)
            agent.wait_for_log(r"event=feedback_status_rejected recipient=police reason=unknown_key", 30)

            def feedback() -> dict | None:
                for _, payload, _ in reversed(stats.matching("stats")):
                    for r in json.loads(payload)["feedback"]["recipients"]:
                        if r["recipient"] == "police" and {"received", "closed"} <= set(r["statuses"]):
                            return r
                return None

            wait_until(feedback, 30, "the statuses in the stats topic")
            seen = feedback()
            status_out = edge_agent("status", "--config", str(config))
            agent.signal(signal.SIGTERM)
            assert agent.wait(60) == 0
    finally:
        police.close()
        stats.close()
        broker.stop()

    assert seen is not None
    assert seen["statuses"]["received"] >= 1 and seen["statuses"]["acknowledged"] >= 1
    assert seen["statuses"]["dispatched"] == 1 and seen["statuses"]["closed"] == 1
    assert seen["rejected"] == {"unknown_key": 1}
    received, acked = seen["received_seconds"], seen["acknowledged_seconds"]
    assert sum(received["counts"]) >= 1 and sum(acked["counts"]) >= 1
    mean_received_s = received["sum_s"] / sum(received["counts"])
    mean_acked_s = acked["sum_s"] / sum(acked["counts"])
    print(
        f"loopback, real agent: publish -> received {mean_received_s * 1e3:.1f} ms,"
        f" -> acknowledged {mean_acked_s * 1e3:.1f} ms"
    )
    assert 0 < mean_received_s < 2 and 0 < mean_acked_s < 2
    assert "police" in status_out.stdout and "received p50" in status_out.stdout

    audit = tmp_path / "audit.jsonl"
    verified = edge_agent("audit", "verify", "--log", str(audit))
    assert verified.returncode == 0, verified.stderr
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    about_first = [r["status"] for r in records if r.get("kind") == "status" and r["alert_id"] == first["identifier"]]
    assert about_first == ["received", "acknowledged", "dispatched", "closed"]
    rejected = [r for r in records if r.get("kind") == "status_rejected"]
    assert [(r["reason"], r["kid"]) for r in rejected] == [("unknown_key", key_id_for(stranger.public_key()))]
    shown = edge_agent("audit", "show", "--log", str(audit)).stdout
    assert "status police closed (confirmed)" in shown and "status_rejected police" in shown

    listed = edge_agent("incidents", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert f"incident {first['incidents']}" in listed.stdout
    assert "police" in listed.stdout and "closed (confirmed)" in listed.stdout
    as_json = json.loads(edge_agent("incidents", "--config", str(config), "--json").stdout)
    incident = next(i for i in as_json["incidents"] if i["incident_id"] == first["incidents"])
    assert incident["recipients"]["police"]["status"]["status"] == "closed"
