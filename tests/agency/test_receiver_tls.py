"""The receiver over TLS with a client certificate, under the shipped broker ACL: it gets the views
addressed to it, and its `received` statuses are allowed out on its own feedback level."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.agency.status_sender import StatusSigner
from agent.agency.trust_registry import TrustRegistry
from agent.delivery.jws import open_envelope
from agent.errors import AgentError
from tests.agency.receiving import Collector, ids, receiving, take
from tests.agency.v2_alerts import RECIPIENT, Site, publish_raw, signed_alert
from tests.brokers import MosquittoBroker, make_pki

SHIPPED_ACL = (Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "acl").read_text()


def test_tls_receiver_under_the_shipped_acl(
    tmp_path: Path, registry: TrustRegistry, north: Site, agency_log: list[str]
) -> None:
    pki = make_pki(tmp_path / "pki", clients=[RECIPIENT])
    cert, key = pki.clients[RECIPIENT]
    with MosquittoBroker(tmp_path / "broker", tls=pki, acl=SHIPPED_ACL) as broker:
        assert broker.port is not None and broker.tls_port is not None
        feedback = Collector(broker.port, "edge/+/feedback/#")
        mine, theirs = signed_alert(north, 1), signed_alert(north, 2, recipient="fire")
        try:
            with receiving(
                f"mqtts://127.0.0.1:{broker.tls_port}",
                registry,
                tmp_path / "seen.sqlite",
                connection={"ca_file": pki.ca, "cert_file": cert, "key_file": key},
                status_signer=StatusSigner(Ed25519PrivateKey.generate(), RECIPIENT),
            ) as receiver:
                publish_raw(
                    broker.port,
                    [(north.topic(recipient="fire"), theirs), (north.topic(), mine)],  # the site's anonymous side
                )
                got = take(receiver, 2, timeout_s=2.0)
                [(topic, status)] = feedback.wait_for(1)
        finally:
            feedback.close()
    assert ids(got) == [json.loads(open_envelope(mine).payload)["identifier"]], "another recipient's view arrived"
    assert topic == f"edge/depot-north/feedback/{RECIPIENT}"
    assert json.loads(open_envelope(status).payload)["status"] == "received"
    assert not any("status_refused" in line for line in agency_log)


def test_an_unusable_tls_file_is_named_before_connecting(tmp_path: Path, registry: TrustRegistry) -> None:
    missing = tmp_path / "nope.pem"
    with (
        pytest.raises(AgentError, match=r"nope\.pem"),
        receiving("mqtts://127.0.0.1:1", registry, tmp_path / "seen.sqlite", connection={"ca_file": missing}),
    ):
        pass
