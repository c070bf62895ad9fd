"""A 30 s broker outage in the middle of a replay: every alert arrives, none twice after dedup."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.agency.subscriber import AlertReceiver, ReceiverOptions, parse_broker_url
from agent.delivery.signing import TrustStore, key_id_for, load_or_create_signing_key
from tests.brokers import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]
OUTAGE_S = 30.0


@pytest.mark.broker
@pytest.mark.slow
def test_thirty_second_outage_mid_replay_loses_nothing(tmp_path: Path, vtest_avi: Path) -> None:
    key = load_or_create_signing_key(tmp_path / "key.pem")
    trust = TrustStore({key_id_for(key.public_key()): key.public_key()})
    out = tmp_path / "alerts.jsonl"
    with MosquittoBroker(tmp_path / "broker", persistent=True) as broker:
        # A persistent session: the broker keeps the subscriber's QoS 1 messages across its restart.
        options = ReceiverOptions(
            parse_broker_url(f"mqtt://127.0.0.1:{broker.port}"),
            "edge/outage-site/+/alerts/#",
            client_id="agency-outage-test",
            session_expiry_s=600,
        )
        with AlertReceiver(options, trust) as receiver:
            receiver.wait_subscribed(10)
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
                    "--set",
                    f"mqtt.port={broker.port}",
                    "--set",
                    "site.id=outage-site",
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
            received = []
            while (item := receiver.get(5.0)) is not None:
                received.append(item)
    assert len(written) >= 4
    ids = [r.message_id for r in received]
    assert len(ids) == len(set(ids)), "the subscriber accepted a message twice"
    assert sorted(r.verified.alert_id for r in received) == sorted(
        json.loads(line)["signature"]["alert_id"] for line in written
    )


def _outage(broker: MosquittoBroker, out: Path) -> None:
    """Stop the broker once the replay has written its first alert, for OUTAGE_S."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 0):
        time.sleep(0.1)
    broker.stop()
    time.sleep(OUTAGE_S)
    broker.start()
