"""`edge-agent subscribe` as a user runs it: rows, JSON lines and CAP out; bad messages reported, never fatal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.agency.trust_registry import TrustRegistry
from agent.alerts.cap import CAP_NAMESPACE
from agent.alerts.status import AlertStatus
from agent.cli.main import build_parser
from agent.delivery.jws import open_envelope, verify_envelope
from tests.agency.receiving import Collector
from tests.agency.v2_alerts import RECIPIENT, Site, alert_data, publish_raw, sign, signed_alert
from tests.brokers import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]


def _open_session(port: int, client_id: str, filters: list[str]) -> None:
    """Create the persistent session the command will resume, so what is published now waits for it."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 60
    client.connect("127.0.0.1", port, clean_start=True, properties=props)
    client.subscribe([(f, 1) for f in filters])
    client.loop(1.0)
    client.loop(0.2)
    client.disconnect()


def _subscribe(port: int, registry_file: Path, tmp_path: Path, client_id: str, *extra: str) -> int:
    args = build_parser().parse_args(
        [
            "subscribe",
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--registry",
            str(registry_file),
            "--recipient",
            RECIPIENT,
            "--seen-db",
            str(tmp_path / "seen.sqlite"),
            "--client-id",
            client_id,
            "--session-expiry",
            "60",
            "--timeout",
            "15",
            *extra,
        ]
    )
    return int(args.handler(args))


def _id(message: bytes) -> str:
    return str(json.loads(open_envelope(message).payload)["identifier"])


def test_rows_and_json_lines_of_accepted_alerts_and_one_line_per_rejected_message(
    tmp_path: Path,
    broker: MosquittoBroker,
    registry_file: Path,
    registry: TrustRegistry,
    north: Site,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _open_session(broker.port, "agency-rows", registry.alert_filters())
    wrong_type = alert_data("depot-north", 2)
    wrong_type["info"]["severity"] = 3  # the row printer once crashed on this
    narrow = alert_data("depot-north", 3)
    del narrow["info"]
    first, narrow_view, last = signed_alert(north, 1), sign(north.key, narrow), signed_alert(north, 4)
    publish_raw(
        broker.port,
        [
            (north.topic(), first),
            (north.topic(), sign(north.key, wrong_type)),
            (north.topic(), b"[" * 100_000),  # once a RecursionError on paho's thread
            (north.topic(), narrow_view),
            (north.topic(), first),
            (north.topic(), last),
        ],
    )
    out = tmp_path / "alerts.jsonl"
    assert _subscribe(broker.port, registry_file, tmp_path, "agency-rows", "--out", str(out), "--count", "3") == 0
    captured = capsys.readouterr()
    rows = captured.out.strip().splitlines()
    assert [row.split()[2] for row in rows] == [_id(first), _id(narrow_view), _id(last)]
    assert rows[0].split()[1] == "Severe" and rows[1].split()[1] == "-"
    assert all("depot-north" in row for row in rows)
    assert [json.loads(line)["identifier"] for line in out.read_text().splitlines()] == [
        _id(first),
        _id(narrow_view),
        _id(last),
    ]
    rejected = [line for line in captured.err.splitlines() if line.startswith("rejected: ")]
    assert len(rejected) == 2
    assert ": bad_schema: info.severity" in rejected[0] and ": too_deep: " in rejected[1]
    assert "accepted=3 rejected=2 duplicates=1 statuses_sent=0 (bad_schema=1 duplicate=1 too_deep=1)" in captured.err


def test_cap_mode_refuses_views_cap_cannot_carry_and_goes_on(
    tmp_path: Path,
    broker: MosquittoBroker,
    registry_file: Path,
    registry: TrustRegistry,
    north: Site,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _open_session(broker.port, "agency-cap", registry.alert_filters())
    narrow = alert_data("depot-north", 10)
    del narrow["info"]
    full = [signed_alert(north, 11), signed_alert(north, 12)]
    publish_raw(broker.port, [(north.topic(), sign(north.key, narrow)), (north.topic(), full[0])])
    assert _subscribe(broker.port, registry_file, tmp_path, "agency-cap", "--cap", "--count", "1") == 0
    captured = capsys.readouterr()
    assert CAP_NAMESPACE in captured.out
    assert f"<identifier>{_id(full[0])}</identifier>" in captured.out
    assert "not_renderable" in captured.err and "lacks fields CAP requires" in captured.err
    # One file per alert with --out DIR, the narrow view again refused.
    _open_session(broker.port, "agency-cap-dir", registry.alert_filters())
    narrow["identifier"] = "narrow-2"
    publish_raw(broker.port, [(north.topic(), sign(north.key, narrow)), (north.topic(), full[1])])
    out_dir = tmp_path / "cap"
    (tmp_path / "dir").mkdir()
    code = _subscribe(
        broker.port, registry_file, tmp_path / "dir", "agency-cap-dir", "--cap", "--out", str(out_dir), "--count", "1"
    )
    assert code == 0
    [xml_file] = out_dir.glob("*.xml")
    assert xml_file.name == f"depot-north-{_id(full[1])}.xml" and CAP_NAMESPACE in xml_file.read_text()


def test_with_a_status_key_each_accepted_alert_is_answered_received(
    tmp_path: Path,
    broker: MosquittoBroker,
    registry_file: Path,
    registry: TrustRegistry,
    north: Site,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "recipient.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    _open_session(broker.port, "agency-status", registry.alert_filters())
    feedback = Collector(broker.port, "edge/+/feedback/#")
    alerts = [signed_alert(north, 20), signed_alert(north, 21)]
    publish_raw(broker.port, [(north.topic(), a) for a in alerts])
    try:
        code = _subscribe(
            broker.port, registry_file, tmp_path, "agency-status", "--status-key", str(key_file), "--count", "2"
        )
        messages = feedback.wait_for(2)
    finally:
        feedback.close()
    assert code == 0
    statuses = [
        AlertStatus.model_validate_json(verify_envelope(open_envelope(m), key.public_key())) for _, m in messages
    ]
    assert [(s.status, s.alert_id) for s in statuses] == [("received", _id(a)) for a in alerts]
    assert "statuses_sent=2" in capsys.readouterr().err


def test_a_bad_registry_is_named_with_file_line_and_field(tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text("sites:\n  - site_id: depot-north\n    keys:\n      - jwk: {kty: OKP, crv: Ed25519}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "subscribe",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--registry",
            str(registry),
            "--recipient",
            RECIPIENT,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {registry}:4: sites.0.keys.0.jwk: not an Ed25519 JWK (kty OKP, crv Ed25519, x)"
    ]
