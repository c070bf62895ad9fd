"""Refusals: wrong certificate, wrong password, unusable TLS files, publishing and reading outside the ACL.

Tampered and replayed alerts, at the receiver and through `edge-agent subscribe`, are in tests/agency/.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.broker_connection import ConnectionOptions, parse_broker_url
from agent.agency.subscriber import AlertReceiver, ReceiverOptions
from agent.agency.trust_registry import TrustRegistry
from agent.config import MqttConfig, MqttTlsConfig, OutboxConfig
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import BrokerUnavailable, MqttPublisher, PublisherState
from agent.delivery.signing import AlertSigner
from agent.delivery.tls import client_tls_context
from agent.errors import AgentError, PublishRejected
from tests.brokers import MosquittoBroker, Pki, make_pki
from tests.delivery.sample_alerts import RECIPIENT, ReceiverFactory, drain, make_alert, numbers

pytestmark = pytest.mark.broker

# The shipped ACL: each site writes only under its own prefix; each agency reads its own alerts.
ACL = (Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "acl").read_text()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(
        tmp_path_factory.mktemp("tls"), anonymous=False, tls=pki, acl=ACL, users={"site-a": "right-password"}
    ) as broker:
        yield broker


def _tls(pki: Pki, name: str) -> MqttTlsConfig:
    cert, key = pki.clients[name]
    return MqttTlsConfig(enabled=True, ca_file=pki.ca, cert_file=cert, key_file=key)


def test_tls_site_publishes_and_agency_receives_its_own_alerts(
    tmp_path: Path,
    tls_broker: MosquittoBroker,
    pki: Pki,
    signer: AlertSigner,
    receiver_factory: ReceiverFactory,
) -> None:
    assert tls_broker.tls_port is not None
    cert, key = pki.clients["agency-police"]
    receiver = receiver_factory(
        f"mqtts://127.0.0.1:{tls_broker.tls_port}",
        "edge/site-a/+/alerts/+/agency-police",
        ca_file=pki.ca,
        cert_file=cert,
        key_file=key,
    )
    config = MqttConfig(port=tls_broker.tls_port, tls=_tls(pki, "site-a"))
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box, MqttPublisher(config, "site-a", box) as pub:
        box.put(make_alert(signer, "edge/site-a/cam/alerts/yard/agency-police", 1))
        box.put(make_alert(signer, "edge/site-a/cam/alerts/yard/fire", 2))  # another agency's view
        pub.wait_connected(5)
        assert pub.flush(5)
    got = drain(receiver, 2, timeout_s=1.5)
    assert numbers(got) == [1]
    assert receiver.counts.snapshot() == {}, "another agency's view reached the receiver"


def test_publish_outside_own_prefix_is_refused_and_kept_aside(
    tmp_path: Path, tls_broker: MosquittoBroker, pki: Pki, signer: AlertSigner
) -> None:
    assert tls_broker.tls_port is not None
    config = MqttConfig(port=tls_broker.tls_port, tls=_tls(pki, "site-a"))
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box, MqttPublisher(config, "site-a", box) as pub:
        box.put(make_alert(signer, "edge/site-b/cam/alerts/yard/agency-police", 1))
        box.put(make_alert(signer, "edge/site-a/cam/alerts/yard/agency-police", 2))
        pub.wait_connected(5)
        assert pub.flush(5)
        stats = box.stats()
        [(msg, code, _)] = box.rejected()
    assert (stats.delivered, stats.rejected) == (1, 1)
    assert code == 0x87 and msg.topic.startswith("edge/site-b/")
    assert pub.rejected_count == 1


def test_certificate_from_another_ca_is_refused(tmp_path: Path, tls_broker: MosquittoBroker, pki: Pki) -> None:
    assert tls_broker.tls_port is not None
    rogue = make_pki(tmp_path / "rogue", clients=["site-a"], ca_name="rogue-ca")
    cert, key = rogue.clients["site-a"]
    tls = MqttTlsConfig(enabled=True, ca_file=pki.ca, cert_file=cert, key_file=key)
    config = MqttConfig(port=tls_broker.tls_port, tls=tls)
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        MqttPublisher(config, "site-a", box, reconnect_max_s=0.5) as pub,
    ):
        with pytest.raises(BrokerUnavailable, match=r"(?i)ssl|certificate|disconnected"):
            pub.wait_connected(2)
        assert pub.state is not PublisherState.CONNECTED


def test_broker_with_an_unknown_ca_is_refused(tmp_path: Path, tls_broker: MosquittoBroker, pki: Pki) -> None:
    assert tls_broker.tls_port is not None
    rogue = make_pki(tmp_path / "rogue", ca_name="rogue-ca")
    cert, key = pki.clients["site-a"]
    config = MqttConfig(
        port=tls_broker.tls_port, tls=MqttTlsConfig(enabled=True, ca_file=rogue.ca, cert_file=cert, key_file=key)
    )
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        MqttPublisher(config, "site-a", box) as pub,
        pytest.raises(BrokerUnavailable, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        pub.wait_connected(2)


def test_tls_context_verifies_the_broker_and_speaks_nothing_older_than_tls_1_2(pki: Pki) -> None:
    cert, key = pki.clients["site-a"]
    strict = client_tls_context(ca_file=pki.ca, cert_file=cert, key_file=key)
    assert strict.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    relaxed = client_tls_context(ca_file=pki.ca, verify_hostname=False)
    assert relaxed.verify_mode == ssl.CERT_REQUIRED and not relaxed.check_hostname  # the chain is still checked


def _unusable_tls_files(tmp_path: Path, pki: Pki, case: str) -> tuple[MqttTlsConfig, str]:
    """TLS settings with one bad file, and the error that must name it."""
    cert = pki.clients["site-a"][0]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    if case == "missing CA":
        missing = tmp_path / "missing-ca.pem"
        return MqttTlsConfig(enabled=True, ca_file=missing), re.escape(f"cannot read TLS CA file {missing}")
    if case == "CA that is not PEM":
        return MqttTlsConfig(enabled=True, ca_file=junk), re.escape(f"TLS CA file {junk} holds no usable certificate")
    other_key = pki.clients["site-b"][1]
    tls = MqttTlsConfig(enabled=True, ca_file=pki.ca, cert_file=cert, key_file=other_key)
    return tls, re.escape(f"TLS client certificate {cert} and key {other_key} cannot be used")


@pytest.mark.parametrize("case", ["missing CA", "CA that is not PEM", "key of another certificate"])
def test_site_and_agency_name_the_unusable_tls_file(tmp_path: Path, pki: Pki, case: str) -> None:
    tls, message = _unusable_tls_files(tmp_path, pki, case)
    config = MqttConfig(port=8883, tls=tls)
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box, pytest.raises(AgentError, match=message):
        MqttPublisher(config, "site-a", box).__enter__()
    connection = ConnectionOptions(
        parse_broker_url("mqtts://127.0.0.1:8883"), ca_file=tls.ca_file, cert_file=tls.cert_file, key_file=tls.key_file
    )
    with pytest.raises(AgentError, match=message):
        AlertReceiver(ReceiverOptions(connection, ("edge/#",)), AlertVerifier(TrustRegistry([]), RECIPIENT))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_wrong_password_is_refused_and_never_reported_connected(
    tmp_path: Path, tls_broker: MosquittoBroker, protocol: str
) -> None:
    assert tls_broker.password_port is not None
    config = MqttConfig(
        port=tls_broker.password_port,
        username="site-a",
        password="wrong",  # type: ignore[arg-type]
        protocol=protocol,  # type: ignore[arg-type]
    )
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        MqttPublisher(config, "site-a", box, reconnect_max_s=0.5) as pub,
    ):
        with pytest.raises(PublishRejected) as err:
            pub.wait_connected(3)
        assert pub.state is not PublisherState.CONNECTED
    assert err.value.reason_code in (0x86, 0x87)


def test_password_file_is_accepted(tmp_path: Path, tls_broker: MosquittoBroker) -> None:
    assert tls_broker.password_port is not None
    (tmp_path / "pw").write_text("right-password\n")
    config = MqttConfig(port=tls_broker.password_port, username="site-a", password_file=tmp_path / "pw")
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box, MqttPublisher(config, "site-a", box) as pub:
        pub.wait_connected(3)
        assert pub.state is PublisherState.CONNECTED
