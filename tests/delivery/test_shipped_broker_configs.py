"""The broker configs in config/mosquitto/, run as shipped: an agency broker and a bridged site broker."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.config import MqttConfig, OutboxConfig
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.signing import AlertSigner
from tests.brokers import MOSQUITTO, Pki, free_port, make_pki
from tests.delivery.feedback_site import (
    Incidents,
    alert_view,
    recipient_key,
    running_site,
    status_bytes,
    wait_until,
    write_config,
)
from tests.delivery.sample_alerts import drain, make_alert, numbers

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "mosquitto"
SITE = "site-0001"


def localised(conf: str, replacements: dict[str, str]) -> str:
    """The shipped text with machine-specific lines swapped; every key must be present."""
    for old, new in replacements.items():
        if old not in conf:
            raise AssertionError(f"shipped config no longer contains {old!r}")
        conf = conf.replace(old, new)
    return conf


@contextmanager
def mosquitto(conf_text: str, workdir: Path, port: int) -> Iterator[None]:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    # Started as root, Mosquitto would switch to the `mosquitto` user, which cannot read the
    # test's private temporary folder: stay the current user.
    conf.write_text(f"user {getpass.getuser()}\n" + conf_text)
    log = (workdir / "log").open("w")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not start: {(workdir / 'log').read_text()}")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def agency_conf(pki: Pki, port: int) -> str:
    return localised(
        (SHIPPED / "agency-broker.conf").read_text(),
        {
            "persistence true": "persistence false",
            "persistence_location /var/lib/mosquitto/\n": "",
            "listener 8883": f"listener {port} 127.0.0.1",
            "/etc/mosquitto/certs/ca.crt": str(pki.ca),
            "/etc/mosquitto/certs/broker.crt": str(pki.server_cert),
            "/etc/mosquitto/certs/broker.key": str(pki.server_key),
            "/etc/mosquitto/acl": str(SHIPPED / "acl"),
        },
    )


def site_conf(pki: Pki, port: int, agency_port: int) -> str:
    cert, key = pki.clients[SITE]
    return localised(
        (SHIPPED / "site-bridge.conf").read_text(),
        {
            "persistence true": "persistence false",
            "persistence_location /var/lib/mosquitto/\n": "",
            "listener 1883 127.0.0.1": f"listener {port} 127.0.0.1",
            "broker.agency.example:8883": f"localhost:{agency_port}",
            "/etc/mosquitto/certs/ca.crt": str(pki.ca),
            "/etc/mosquitto/certs/site-0001.crt": str(cert),
            "/etc/mosquitto/certs/site-0001.key": str(key),
        },
    )


def test_site_alerts_cross_the_shipped_bridge_to_the_agency_that_may_read_them(
    tmp_path: Path,
    signer: AlertSigner,
    receiver_factory,
) -> None:
    pki = make_pki(tmp_path / "pki", clients=[SITE, "police-dispatch"])
    agency_port, site_port = free_port(), free_port()
    with (
        mosquitto(agency_conf(pki, agency_port), tmp_path / "agency", agency_port),
        mosquitto(site_conf(pki, site_port, agency_port), tmp_path / "site", site_port),
    ):
        cert, key = pki.clients["police-dispatch"]
        police = receiver_factory(
            f"mqtts://localhost:{agency_port}",
            f"edge/{SITE}/+/alerts/#",
            recipient="police-dispatch",
            ca_file=pki.ca,
            cert_file=cert,
            key_file=key,
        )
        time.sleep(1.0)  # the bridge connects on its own schedule
        with (
            Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
            MqttPublisher(MqttConfig(port=site_port), SITE, box) as pub,
        ):
            for n in range(10):
                recipient = "police-dispatch" if n % 2 == 0 else "firm-soc"
                box.put(make_alert(signer, f"edge/{SITE}/cam/alerts/yard/{recipient}", n))
            pub.wait_connected(5)
            assert pub.flush(10)
        got = drain(police, 10, timeout_s=5)
    # The ACL lets the police read only the views addressed to it: the others never reach it
    # (the receiver would refuse them as not for it, so nothing refused proves the broker kept them back).
    assert numbers(got) == [0, 2, 4, 6, 8]
    assert police.counts.snapshot() == {}


class TlsClient:
    """An MQTT 5 client with a certificate of the test CA (CN = `name`): what it received, its PUBACK codes."""

    def __init__(self, pki: Pki, name: str, port: int) -> None:
        import ssl
        import threading

        import paho.mqtt.client as paho

        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, int] = {}
        self._lock = threading.Lock()
        connected, subscribed = threading.Event(), threading.Event()
        self._subscribed = subscribed
        cert, key = pki.clients[name]
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{name}", protocol=paho.MQTTv5)
        self.client.tls_set(
            ca_certs=str(pki.ca), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        self.client.on_connect = lambda c, u, f, rc, p: connected.set()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.connect("localhost", port)
        self.client.loop_start()
        if not connected.wait(10):
            raise AssertionError(f"{name} did not connect")

    def _on_message(self, _c: object, _u: object, msg: object) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _on_publish(self, _c: object, _u: object, mid: int, rc: object, _p: object) -> None:
        with self._lock:
            self.pubacks[mid] = rc.value

    def subscribe(self, topic_filter: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic_filter, qos=1)
        if not self._subscribed.wait(10):
            raise AssertionError("no SUBACK")

    def publish(self, topic: str, payload: bytes) -> int:
        """The PUBACK reason code (0 success, 0x10 no subscribers, 0x87 not authorised)."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        deadline = time.monotonic() + 5
        while info.mid not in self.pubacks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pubacks[info.mid]

    def got(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


NOT_AUTHORISED = 0x87


def test_the_shipped_acl_confines_feedback_to_its_recipient_and_its_site(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", clients=[SITE, "site-0002", "police", "fire"])
    port = free_port()
    with mosquitto(agency_conf(pki, port), tmp_path / "agency", port):
        clients = {name: TlsClient(pki, name, port) for name in (SITE, "site-0002", "police", "fire")}
        site, other_site, police, fire = (clients[n] for n in (SITE, "site-0002", "police", "fire"))
        site.subscribe(f"edge/{SITE}/feedback/+")
        other_site.subscribe(f"edge/{SITE}/feedback/#")  # another site's statuses
        fire.subscribe("edge/+/feedback/#")  # every recipient's statuses
        # Allowed: the police on its own level of this site's feedback; the site's own alerts and status.
        assert police.publish(f"edge/{SITE}/feedback/police", b"status from police") == 0
        assert site.publish(f"edge/{SITE}/cam-1/alerts/yard/police", b"alert") in (0, 0x10)
        assert site.publish(f"edge/{SITE}/status", b"online") in (0, 0x10)
        # Refused by the broker, each boundary:
        refused = {
            "a recipient writing another recipient's level": police.publish(f"edge/{SITE}/feedback/fire", b"forged"),
            "a recipient writing a site's alerts": police.publish(f"edge/{SITE}/cam-1/alerts/yard/police", b"fake"),
            "a recipient writing another site's alerts": fire.publish("edge/site-0002/cam-1/alerts/yard/fire", b"x"),
            "a site writing its own feedback": site.publish(f"edge/{SITE}/feedback/police", b"self-made status"),
            "a site writing another site's feedback": other_site.publish(f"edge/{SITE}/feedback/police", b"x"),
            "a site writing another site's alerts": other_site.publish(f"edge/{SITE}/cam-1/alerts/yard/police", b"x"),
        }
        time.sleep(1.0)
        got = {name: c.got() for name, c in clients.items()}
        for c in clients.values():
            c.close()
    assert refused == dict.fromkeys(refused, NOT_AUTHORISED)
    assert got[SITE] == [(f"edge/{SITE}/feedback/police", b"status from police")]
    assert got["site-0002"] == []  # a site never reads another site's feedback
    assert got["fire"] == []  # nor does a recipient read the statuses of others


def test_a_status_crosses_the_shipped_bridge_into_the_site_and_is_believed(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", clients=[SITE, "police"])
    agency_port, site_port = free_port(), free_port()
    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_config(
        tmp_path / "site.yaml",
        port=site_port,
        site_id=SITE,
        recipients=[{"name": "police", "feedback_keys": str(jwk)}],
    )
    with (
        mosquitto(agency_conf(pki, agency_port), tmp_path / "agency", agency_port),
        mosquitto(site_conf(pki, site_port, agency_port), tmp_path / "site", site_port),
    ):
        police = TlsClient(pki, "police", agency_port)
        police.subscribe(f"edge/{SITE}/+/alerts/+/police")
        time.sleep(1.0)  # the bridge connects on its own schedule
        with running_site(config) as site:
            site.submit((Incidents(config).alert("start", 1),))
            wait_until(police.got, 10, "the alert at the police, across the bridge")
            view = alert_view(police.got()[0][1])
            status = status_bytes(
                key,
                kid,
                site_id=SITE,
                recipient="police",
                alert_id=view["identifier"],
                incident_id=view["incidents"],
                status="acknowledged",
            )
            assert police.publish(f"edge/{SITE}/feedback/police", status) in (0, 0x10)
            wait_until(
                lambda: any(r.statuses.get("acknowledged") for r in site.feedback.counters().recipients),
                10,
                "the acknowledgement at the site, across the bridge",
            )
        police.close()
