"""End to end, real at every step: a clip, a real model, a real Mosquitto, verified alerts."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.alerts.schema import PublishedAlert
from agent.delivery.jws import TYP_ALERT, key_id_for, open_envelope, verify_envelope
from agent.delivery.signing import load_signing_key
from tests.brokers import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"


def edge_agent(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def payload_of(line: str) -> Any:
    """The JSON of the alert a written (or published) JWS carries, its signature not checked."""
    return json.loads(open_envelope(line.encode()).payload)


def private_state(tmp_path: Path) -> list[str]:
    """Overrides that keep a test's outbox and signing key in its own folder."""
    return [
        "--set",
        f"outbox.path={tmp_path / 'outbox.sqlite'}",
        "--set",
        f"signing.key_file={tmp_path / 'key.pem'}",
        "--set",
        f"policies.pseudonym_key_file={tmp_path / 'pseudonym.key'}",
        "--set",
        f"policies.audit_log={tmp_path / 'audit.jsonl'}",
    ]


class Collector:
    """Subscribes before the agent starts and keeps every message of a topic filter."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic_filter, qos=1)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.mark.broker
@pytest.mark.slow
def test_replay_publishes_every_alert_it_writes(mosquitto: MosquittoBroker, vtest_avi: Path, tmp_path: Path) -> None:
    assert mosquitto.port is not None
    site = "e2e-site"
    collector = Collector(mosquitto.port, f"edge/{site}/+/alerts/#")
    out = tmp_path / "alerts.jsonl"
    try:
        result = edge_agent(
            "replay",
            "--config",
            str(DEMO_CONFIG),
            "--source",
            str(vtest_avi),
            "--out",
            str(out),
            "--publish",
            # Alerts dated years ago are still fresh messages: expiry counts from publishing.
            "--start-time",
            "2020-01-01T00:00:00Z",
            "--set",
            f"mqtt.port={mosquitto.port}",
            "--set",
            f"site.id={site}",
            *private_state(tmp_path),
        )
        assert result.returncode == 0, result.stderr
    finally:
        collector.close()
    written = out.read_text().splitlines()
    assert len(written) >= 4  # people walk through the demo zone several times
    assert "replay summary" in result.stdout

    key = load_signing_key(tmp_path / "key.pem").public_key()
    received = [payload for topic, payload in collector.messages]
    assert len(received) == len(written)
    assert sorted(p.decode() for p in received) == sorted(written)
    phases = []
    for payload in received:
        opened = open_envelope(payload)
        assert (opened.kid, opened.typ) == (key_id_for(key), TYP_ALERT)
        alert = PublishedAlert.model_validate_json(verify_envelope(opened, key))
        phases.append(alert.detection.phase)
        assert alert.site_id == alert.detection.site_id == site
    assert phases.count("start") == phases.count("end") >= 1


def test_replay_is_deterministic(assets_dir: Path, tmp_path: Path) -> None:
    clip = assets_dir / "videos" / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4"
    zone = "cameras.0.zones.0.points=[[0.0,0.5],[1.0,0.5],[1.0,1.0],[0.0,1.0]]"
    outputs = []
    for run in range(2):
        out = tmp_path / f"run{run}.jsonl"
        result = edge_agent(
            "replay",
            "--config",
            str(DEMO_CONFIG),
            "--source",
            str(clip),
            "--out",
            str(out),
            "--start-time",
            "2026-01-01T22:00:00Z",
            "--set",
            zone,
            "--set",
            "cameras.0.rules.0.min_duration_s=0.5",
            *private_state(tmp_path),
        )
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
    alerts = [payload_of(line) for line in outputs[0].splitlines()]
    assert alerts, "people walk through the lower half of TUD-Stadtmitte"
    assert alerts[0]["sent"].startswith("2026-01-01T22:00")
    assert alerts[0]["status"] == "Test"


def test_detect_writes_mot_lines(assets_dir: Path, tmp_path: Path) -> None:
    clip = assets_dir / "videos" / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4"
    out = tmp_path / "tracks.txt"
    result = edge_agent(
        "detect",
        "--config",
        str(DEMO_CONFIG),
        "--source",
        str(clip),
        "--out",
        str(out),
        "--set",
        "cameras.0.motion.mode=always",
        *private_state(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows and all(len(r) == 10 and r[7:] == ["-1", "-1", "-1"] for r in rows)
    frames = {int(r[0]) for r in rows}
    assert min(frames) >= 1 and max(frames) <= 179
    for r in rows:
        x, y, w, h = map(float, r[2:6])
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 640.5 and y + h <= 480.5


@pytest.mark.slow
def test_replay_sends_face_filled_snapshots_only_to_the_recipient_allowed_them(
    assets_dir: Path, tmp_path: Path
) -> None:
    clip = assets_dir / "videos" / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4"
    recipients = (
        'policies.recipients=[{name: police-dispatch}, {name: firm-soc, fields: ["*"], '
        "snapshots: {enabled: true, framing: frame}}]"
    )
    out = tmp_path / "alerts.jsonl"
    result = edge_agent(
        "replay",
        "--config",
        str(DEMO_CONFIG),
        "--source",
        str(clip),
        "--out",
        str(out),
        "--set",
        "cameras.0.zones.0.points=[[0.0,0.5],[1.0,0.5],[1.0,1.0],[0.0,1.0]]",
        "--set",
        recipients,
        *private_state(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    by_recipient: dict[str, list[dict[str, Any]]] = {"police-dispatch": [], "firm-soc": []}
    for line in out.read_text().splitlines():
        alert = payload_of(line)
        by_recipient[alert["recipient"]].append(alert)
    assert by_recipient["police-dispatch"] and by_recipient["firm-soc"]
    assert not any("snapshot" in a for a in by_recipient["police-dispatch"]), "a picture went to police-dispatch"
    pictured = [a["snapshot"] for a in by_recipient["firm-soc"] if a["detection"]["phase"] != "end"]
    assert pictured and all(s["redaction"] == "faces-filled" and s["data_base64"] for s in pictured)
    image = cv2.imdecode(np.frombuffer(base64.b64decode(pictured[0]["data_base64"]), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and max(image.shape[:2]) <= 640
