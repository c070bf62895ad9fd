"""A full disk under the outbox: said in words, counted, and delivery resumes by itself once space returns.

The disk is a real tmpfs of a few MiB mounted for the test (root only; the
test is skipped, saying why, where mounting is refused), filled with a plain
file until the kernel answers ENOSPC, and freed by deleting that file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import MqttConfig, OutboxConfig
from agent.delivery.outbox import OutboundMessage, Outbox, message_id_for
from agent.delivery.publisher import MqttPublisher
from agent.delivery.signing import AlertSigner
from agent.errors import AgentError
from agent.privacy.audit import read_records
from tests.brokers import MosquittoBroker
from tests.delivery.sample_alerts import ReceiverFactory, drain, make_alert, numbers
from tests.runtime.agent_process import AgentProcess, Subscriber, camera, edge_agent, write_site_config


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs, unmounted again whatever the test did."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here (mount needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=False)  # a child still holds a file


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left; return it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as err:
        assert err.errno == errno.ENOSPC, err
    try:
        while True:
            os.write(fd, b"\0" * 512)  # the last partial block too
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def _message(n: int) -> OutboundMessage:
    return OutboundMessage.for_payload("edge/full/cam/alerts/yard", f"{n:08d}".encode() + os.urandom(3000), 1)


def test_a_full_disk_is_said_in_words_counted_and_the_outbox_recovers(
    small_disk: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)
    path = small_disk / "outbox.sqlite"
    with Outbox(OutboxConfig(path=path)) as box, caplog.at_level(logging.INFO, logger="agent"):
        for n in range(3):
            assert box.put(_message(n))
        filler = fill(small_disk)
        with pytest.raises(AgentError) as caught:
            for n in range(3, 60):  # a commit may still fit in the WAL's last block
                box.put(_message(n))
        said = str(caught.value)
        assert "disk full" in said and str(path) in said, said
        full = box.stats()
        assert full.unstored >= 1 and full.storage_errors >= full.unstored
        assert "disk full" in full.storage_problem
        waiting = box.pending()
        with pytest.raises(AgentError):
            box.ack_many([m.seq for m in waiting])  # the PUBACKs cannot be committed either
        assert box.stats().depth == len(waiting)  # nothing counted as gone that is still there
        filler.unlink()
        assert box.put(_message(100))
        assert box.ack_many([m.seq for m in waiting]) == len(waiting)
        after = box.stats()
    logged = [r.getMessage() for r in caplog.records if "event=outbox_storage_error" in r.getMessage()]
    assert logged and all(f"path={path}" in line and 'reason="disk full"' in line for line in logged), logged
    assert any("event=outbox_storage_recovered" in r.getMessage() for r in caplog.records)
    assert after.depth == 1 and after.storage_problem == ""
    with Outbox(OutboxConfig(path=path)) as reopened:
        assert reopened.stats().depth == 1
        assert [m.message.payload[:8] for m in reopened.pending()] == [b"00000100"]


@pytest.mark.broker
def test_delivery_resumes_by_itself_when_space_returns(
    small_disk: Path, tmp_path: Path, signer: AlertSigner, receiver_factory: ReceiverFactory
) -> None:
    topic = "edge/site-full/cam/alerts/yard"
    with MosquittoBroker(tmp_path / "b") as broker, Outbox(OutboxConfig(path=small_disk / "o.sqlite")) as box:
        assert broker.port is not None
        receiver = receiver_factory(f"mqtt://127.0.0.1:{broker.port}", "edge/site-full/+/alerts/#")
        for n in range(20):
            box.put(make_alert(signer, topic, n))
        filler = fill(small_disk)
        with MqttPublisher(MqttConfig(port=broker.port), "site-full", box) as pub:
            pub.wait_connected(5)
            # Published and acknowledged by the broker, but the PUBACKs cannot be committed.
            assert sorted(numbers(drain(receiver, 20))) == list(range(20))
            deadline = time.monotonic() + 15
            while pub.counters().storage_errors < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert pub.counters().storage_errors >= 2 and pub.threads_alive
            assert box.stats().depth == 20  # still waiting: nothing is deleted without a durable commit
            filler.unlink()
            assert pub.flush(30), f"outbox still holds {box.stats().depth}"
            for n in range(20, 25):
                assert box.put(make_alert(signer, topic, n))
            assert numbers(drain(receiver, 5)) == list(range(20, 25))
            assert pub.flush(15)
    with Outbox(OutboxConfig(path=small_disk / "o.sqlite")) as reopened:
        stats = reopened.stats()
    assert (stats.depth, stats.delivered) == (0, 25)


def _status(config: Path) -> tuple[int, str, dict[str, Any]]:
    text = edge_agent("status", "--config", str(config))
    as_json = json.loads(edge_agent("status", "--config", str(config), "--json").stdout)
    return text.returncode, text.stdout, as_json


def _wait_status(config: Path, wanted: str, timeout_s: float = 60) -> tuple[int, str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    code, out, doc = _status(config)
    while wanted not in out and time.monotonic() < deadline:
        time.sleep(0.5)
        code, out, doc = _status(config)
    assert wanted in out, out
    return code, out, doc


@pytest.mark.broker
def test_an_agent_whose_outbox_disk_fills_keeps_its_camera_and_delivers_again(
    small_disk: Path, tmp_path: Path, mosquitto: MosquittoBroker, vtest_avi: Path
) -> None:
    assert mosquitto.port is not None
    site = "full-site"
    config = write_site_config(
        tmp_path / "site.yaml", port=mosquitto.port, site_id=site, cameras=[camera("walk", str(vtest_avi))]
    )
    doc = yaml.safe_load(config.read_text())
    doc["outbox"]["path"] = str(small_disk / "outbox.sqlite")
    doc["policies"] = {"audit_log": str(tmp_path / "audit.jsonl"), "pseudonym_key_file": str(tmp_path / "p.key")}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    sub = Subscriber(mosquitto.port, f"edge/{site}/+/alerts/#")
    try:
        with AgentProcess(config) as agent:
            sub.wait_for(r"/alerts/", 90)
            filler = fill(small_disk)
            agent.wait_for_log(rf"event=outbox_storage_error path={small_disk / 'outbox.sqlite'}.*disk full", 60)
            code, out, full = _wait_status(config, "disk full")
            assert code == 150 and "agent: degraded" in out, out
            time.sleep(2)
            _, _, later = _status(config)
            cams = (full["stats"]["cameras"][0], later["stats"]["cameras"][0])
            assert all(c["state"] == "running" and c["restarts"] == 0 for c in cams)
            assert cams[1]["frames_processed"] > cams[0]["frames_processed"]  # the camera kept going
            assert 1 <= later["stats"]["outbox_unstored"] <= later["stats"]["delivery"]["failures"]
            filler.unlink()
            freed = len(sub.matching(r"/alerts/"))
            _wait_status(config, "agent: healthy")
            sub.wait_for(r"/alerts/", 60, count=freed + 1)  # alerts made after space came back arrive
            agent.signal(signal.SIGTERM)
            assert agent.wait(60) == 0
            assert "event=agent_stopped flushed=True" in agent.log
        received = {m[1] for m in sub.matching(r"/alerts/")}
    finally:
        sub.close()
    delivered = {message_id_for(p) for p in received}
    audited = [str(r.data["message_id"]) for r in read_records(tmp_path / "audit.jsonl")]
    assert audited and set(audited) <= delivered  # nothing audited that did not leave
