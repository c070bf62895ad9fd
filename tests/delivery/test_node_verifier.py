"""An agency's own software verifies the site's alerts: Node's `jose`, given nothing but the exported JWK Set.

`edge-agent replay --publish` runs the real pipeline over the walkway clip and
publishes through a real Mosquitto; the payloads taken from the broker go to
`verify_jws.mjs`, which shares no code with the agent. `jose` is installed by
`make node-deps` (which `make test` runs) into `.cache/node`; this module runs
that target itself when the package is missing. Without node the tests are
skipped and say so.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from agent.alerts.schema import PublishedAlert
from agent.delivery import jws
from agent.delivery.signing import AlertSigner, generate_key_file, payload_bytes, write_public_key_files

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "verify_jws.mjs"
JOSE = REPO / ".cache" / "node" / "node_modules" / "jose" / "package.json"
Verifier = Callable[..., tuple[int, list[dict[str, Any]]]]


@pytest.fixture(scope="module")
def node_verifier() -> Verifier:
    """`verify(jwks_file, envelopes, typ=...)`: the exit status and one result per envelope."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the independent verifier (Node's jose) cannot run")
    if not JOSE.is_file():
        done = subprocess.run(["make", "-s", "node-deps"], cwd=REPO, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not JOSE.is_file():
            pytest.fail(
                "`make node-deps` could not install jose into .cache/node (remove .cache/node to start over): "
                f"{done.stdout}{done.stderr}"
            )

    def verify(
        jwks_file: Path, envelopes: Sequence[bytes], typ: str = jws.TYP_ALERT
    ) -> tuple[int, list[dict[str, Any]]]:
        stdin = b"".join(e + b"\n" for e in envelopes)
        done = subprocess.run(
            [node, str(SCRIPT), "--jwks", str(jwks_file), "--typ", typ], input=stdin, capture_output=True, timeout=60
        )
        assert done.returncode in (0, 1), done.stderr.decode()
        return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]

    return verify


def edge_agent(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "agent", "--log-level", "warning", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


class Collector:
    """Subscribes before the agent starts and keeps every message of a topic filter."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic_filter, qos=1)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def payload_of(result: dict[str, Any]) -> bytes:
    return base64.urlsafe_b64decode(result["payload_b64url"] + "=" * (-len(result["payload_b64url"]) % 4))


@pytest.mark.broker
def test_alerts_published_by_a_replay_verify_in_node_with_only_the_exported_jwk_set(
    mosquitto: Any, vtest_avi: Path, tmp_path: Path, node_verifier: Verifier
) -> None:
    site = "jose-check"
    made = edge_agent("keys", "generate", "--out", str(tmp_path / "site-signing.pem"))
    assert made.returncode == 0, made.stderr
    exported = edge_agent("keys", "export-public", "--key", str(tmp_path / "site-signing.pem"), "--out", str(tmp_path))
    assert exported.returncode == 0, exported.stderr
    jwks_file = tmp_path / "site-signing.jwks.json"
    [site_jwk] = json.loads(jwks_file.read_text())["keys"]

    recipients = '[{name: police, agreement: dsa-2026-police, retention_s: 600}, {name: control-room, fields: ["*"]}]'
    collector = Collector(mosquitto.port, f"edge/{site}/#")
    out = tmp_path / "alerts.jsonl"
    try:
        # 150 frames (15 s of the clip): two people cross the zone, two incidents, start and end each.
        replay = edge_agent(
            "replay",
            *("--config", str(REPO / "config" / "demo.yaml"), "--source", str(vtest_avi), "--max-frames", "150"),
            *("--start-time", "2026-01-01T00:00:00Z", "--out", str(out), "--publish"),
            *(
                "--set",
                f"mqtt.port={mosquitto.port}",
                "--set",
                f"site.id={site}",
                "--set",
                "mqtt.message_expiry_s=1800",
            ),
            *(
                "--set",
                f"signing.key_file={tmp_path / 'site-signing.pem'}",
                "--set",
                f"policies.recipients={recipients}",
            ),
            *("--set", f"outbox.path={tmp_path / 'outbox.sqlite'}"),
            *("--set", f"policies.pseudonym_key_file={tmp_path / 'pseudonym.key'}"),
            *("--set", f"policies.audit_log={tmp_path / 'audit.jsonl'}"),
        )
        assert replay.returncode == 0, replay.stderr
    finally:
        collector.close()
    alert_messages = [(t, p) for t, p in collector.messages if "/alerts/" in t]
    envelopes = [payload for _, payload in alert_messages]
    assert len(envelopes) >= 4, "two recipients, at least one incident start and end"
    assert sorted(envelopes) == sorted(line.encode() for line in out.read_text().splitlines())

    status, results = node_verifier(jwks_file, envelopes)
    assert status == 0, [r for r in results if not r["ok"]]
    assert len(results) == len(envelopes)
    alerts = []
    for (topic, envelope), result in zip(alert_messages, results, strict=True):
        assert (result["alg"], result["typ"], result["kid"]) == ("Ed25519", "edge-alert+json", site_jwk["kid"])
        signed = payload_of(result)
        assert signed == jws.open_envelope(envelope).payload, "node read the very bytes the site signed"
        alert = PublishedAlert.model_validate_json(signed)
        assert alert.site_id == site and topic.startswith(f"edge/{site}/") and topic.endswith(f"/{alert.recipient}")
        alerts.append(alert)
    by_recipient = {a.recipient: a for a in alerts}
    assert by_recipient.keys() == {"police", "control-room"}
    police, control = by_recipient["police"], by_recipient["control-room"]
    assert police.agreement == "dsa-2026-police" and police.expires - police.sent == timedelta(seconds=600)
    assert control.agreement == "control-room" and control.expires - control.sent == timedelta(seconds=1800)
    assert {a.detection.phase for a in alerts} == {"start", "end"}


def test_node_refuses_what_the_site_did_not_sign_or_another_key_signed(
    tmp_path: Path, signer: AlertSigner, node_verifier: Verifier
) -> None:
    key = generate_key_file(tmp_path / "site.pem")
    jwks_file = write_public_key_files(key, tmp_path, "site").jwk_set
    good = AlertSigner(key).sign({"schema_version": 2, "identifier": "a-1"})
    other_payload = base64.urlsafe_b64encode(b'{"schema_version":2,"identifier":"a-2"}').rstrip(b"=").decode()
    edited = json.dumps({**json.loads(good), "payload": other_payload}).encode()
    status, results = node_verifier(jwks_file, [good, edited, signer.sign({"a": 1})])
    assert status == 1
    assert results[0]["ok"] and not results[1]["ok"] and not results[2]["ok"]
    assert results[1]["error"].startswith("ERR_JWS_SIGNATURE_VERIFICATION_FAILED")
    assert results[2]["error"].startswith("ERR_JWKS_NO_MATCHING_KEY"), "another site's key is not in this set"
    status, [as_status] = node_verifier(jwks_file, [good], typ=jws.TYP_STATUS)
    assert status == 1 and as_status["error"] == "bad_typ: edge-alert+json is not edge-status+json"


# Numbers whose JSON text differs between Python (`json.dumps`) and JavaScript (`JSON.stringify`).
AWKWARD_NUMBERS = {
    "big": 1e16,  # Python 1e+16, JavaScript 10000000000000000
    "tiny": 1e-7,  # 1e-07 against 1e-7
    "whole": 100.0,  # 100.0 against 100
    "negative_zero": -0.0,  # -0.0 against 0
    "wide": 1.2345678901234568e20,  # 1.2345678901234568e+20 against 123456789012345680000
    "sum": 0.1 + 0.2,  # the same text in both: 0.30000000000000004
    "largest": 1.7976931348623157e308,
    "beyond_2_53": 2**53 + 1,  # an exact integer in Python; JavaScript's number rounds it
}


def test_numbers_python_and_javascript_write_differently_survive_verification(
    tmp_path: Path, node_verifier: Verifier
) -> None:
    """The signature covers the payload bytes, never a re-serialisation, so no number format can break it."""
    key = generate_key_file(tmp_path / "site.pem")
    jwks_file = write_public_key_files(key, tmp_path, "site").jwk_set
    message = {"schema_version": 2, "headline": "Einbruch Hof Süd, après 22:00", "detection": AWKWARD_NUMBERS}
    envelope = AlertSigner(key).sign(message)
    status, [result] = node_verifier(jwks_file, [envelope])
    assert status == 0 and result["ok"], result
    assert payload_of(result) == payload_bytes(message)
    # Had the verifier signed or checked JavaScript's own serialisation, it would have failed:
    assert result["reparsed"].encode() != payload_bytes(message)
    reparsed = json.loads(result["reparsed"])["detection"]
    assert reparsed["big"] == 1e16 and reparsed["whole"] == 100 and reparsed["beyond_2_53"] == 2**53
    # The same numbers to both, only written differently (JavaScript reads every one as a double).
    assert {k: float(v) for k, v in reparsed.items()} == {k: float(v) for k, v in AWKWARD_NUMBERS.items()}
