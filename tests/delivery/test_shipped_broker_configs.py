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
from tests.delivery.sample_alerts import drain, make_alert

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
            f"mqtts://localhost:{agency_port}", f"edge/{SITE}/+/alerts/#", ca_file=pki.ca, cert_file=cert, key_file=key
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
    # The ACL lets the police read only the views addressed to it.
    assert [r.verified.alert["n"] for r in got] == [0, 2, 4, 6, 8]
