"""A 30 s broker outage in the middle of a replay: every alert arrives, none twice after dedup."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.delivery.jws import open_envelope
from agent.delivery.signing import AlertSigner, load_or_create_signing_key
from tests.agency.receiving import receiving, take
from tests.brokers import MosquittoBroker
from tests.delivery.sample_alerts import registry_for

REPO = Path(__file__).resolve().parents[2]
OUTAGE_S = 30.0
SITE = "outage-site"
RECIPIENT = "default"  # the one recipient of the demo config's default policy


@pytest.mark.broker
@pytest.mark.slow
def test_thirty_second_outage_mid_replay_loses_nothing(tmp_path: Path, vtest_avi: Path) -> None:
    registry = registry_for(AlertSigner(load_or_create_signing_key(tmp_path / "key.pem")), SITE)
    out = tmp_path / "alerts.jsonl"
    with (
        MosquittoBroker(tmp_path / "broker", persistent=True) as broker,
        # A persistent session: the broker keeps the subscriber's QoS 1 messages across its restart.
        receiving(
            broker,
            registry,
            tmp_path / "seen.sqlite",
            recipient=RECIPIENT,
            topic_filters=(f"edge/{SITE}/+/alerts/#",),
            client_id="agency-outage-test",
            session_expiry_s=600,
        ) as receiver,
    ):
        replay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "--log-level",
                "warning",
                "replay",
                "--config",
                str(REPO / "config" / "demo.yaml"),
                "--source",
                str(vtest_avi),
                "--out",
                str(out),
                "--publish",
                # Now, not the clip's file time: the receiver refuses alerts past their expiry.
                "--start-time",
                datetime.now(UTC).isoformat(),
                "--set",
                f"mqtt.port={broker.port}",
                "--set",
                f"site.id={SITE}",
                "--set",
                "mqtt.connect_timeout_s=120",  # also how long the replay waits for acknowledgements
                "--set",
                f"outbox.path={tmp_path / 'outbox.sqlite'}",
                "--set",
                f"signing.key_file={tmp_path / 'key.pem'}",
                "--set",
                f"policies.pseudonym_key_file={tmp_path / 'pseudonym.key'}",
                "--set",
                f"policies.audit_log={tmp_path / 'audit.jsonl'}",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        outage = threading.Thread(target=_outage, args=(broker, out), name="test.outage")
        outage.start()
        _, stderr = replay.communicate(timeout=600)
        outage.join()
        assert replay.returncode == 0, stderr
        written = out.read_text().splitlines()
        # Everything that arrives until the broker is quiet, each used (acknowledged) in turn.
        received = take(receiver, 2 * len(written) + 10, timeout_s=5.0)
        rejected = receiver.counts.snapshot()
    assert len(written) >= 4
    ids = [r.accepted.alert.identifier for r in received]
    assert len(ids) == len(set(ids)), "the subscriber accepted a message twice"
    assert sorted(ids) == sorted(json.loads(open_envelope(line.encode()).payload)["identifier"] for line in written)
    assert set(rejected) <= {"duplicate"}, rejected


def _outage(broker: MosquittoBroker, out: Path) -> None:
    """Stop the broker once the replay has written its first alert, for OUTAGE_S."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 0):
        time.sleep(0.1)
    broker.stop()
    time.sleep(OUTAGE_S)
    broker.start()
