"""`edge-agent status-send`: one signed status reaches the site's feedback topic, or the user learns why not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.alerts.status import AlertStatus
from agent.delivery.jws import TYP_STATUS, key_id_for, open_envelope, verify_envelope
from tests.agency.receiving import Collector
from tests.brokers import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "police.pem"
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return path


def _status_send(
    port: int, key_file: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "status-send",
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--key",
            str(key_file),
            "--site",
            "depot-north",
            "--alert",
            "0190f7a2-aaaa-7bbb-8ccc-000000000001",
            "--incident",
            "0190f7a2-aaaa-7bbb-8ccc-000000000000",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=env,
    )


def test_a_closed_status_with_its_disposition_arrives_signed(broker: MosquittoBroker, key_file: Path) -> None:
    feedback = Collector(broker.port, "edge/depot-north/feedback/#")
    try:
        result = _status_send(
            broker.port,
            key_file,
            "--recipient",
            "police",
            "--status",
            "closed",
            "--disposition",
            "false_alarm",
            "--note",
            "cat on the fence",
            "--operator",
            "op-17",
        )
        [(topic, message)] = feedback.wait_for(1)
    finally:
        feedback.close()
    assert result.returncode == 0, result.stderr
    assert topic == "edge/depot-north/feedback/police"
    assert result.stdout.startswith("sent closed for alert 0190f7a2-aaaa-7bbb-8ccc-000000000001 on " + topic)
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    opened = open_envelope(message)
    assert opened.typ == TYP_STATUS and opened.kid == key_id_for(key.public_key())
    status = AlertStatus.model_validate_json(verify_envelope(opened, key.public_key()))
    assert (status.status, status.disposition, status.note, status.operator) == (
        "closed",
        "false_alarm",
        "cat on the fence",
        "op-17",
    )


def test_a_status_the_schema_refuses_is_bad_input(broker: MosquittoBroker, key_file: Path) -> None:
    result = _status_send(
        broker.port, key_file, "--recipient", "police", "--status", "acknowledged", "--disposition", "test"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: status not sent: a disposition goes with status closed, and only with it"
    ]


def test_a_refused_status_says_so(tmp_path: Path, key_file: Path) -> None:
    acl = "user police\ntopic write edge/+/feedback/police\n"
    with MosquittoBroker(tmp_path / "acl-broker", anonymous=False, users={"police": "pw"}, acl=acl) as broker:
        env = {"EDGE_MQTT_PASSWORD": "pw", "PATH": "/usr/bin:/bin"}
        args = ("--username", "police", "--status", "acknowledged")
        assert broker.password_port is not None
        allowed = _status_send(broker.password_port, key_file, "--recipient", "police", *args, env=env)
        refused = _status_send(broker.password_port, key_file, "--recipient", "fire", *args, env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: broker refused the status on edge/depot-north/feedback/fire: Not authorized (reason code 135)"
    ]
