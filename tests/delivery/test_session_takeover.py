"""Two agents with one site id and client id (a cloned SD card) on one broker: named, reported, not fought over.

Mosquitto closes the older of two connections with one client id ("Client X
already connected, closing old connection" in its log); each line counted
there is one take-over. Left alone, two such agents take the session from
each other several times a second.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import MqttConfig, OutboxConfig
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher, PublisherState
from tests.brokers import MosquittoBroker
from tests.runtime.agent_process import AgentProcess, camera, edge_agent, write_site_config

pytestmark = pytest.mark.broker
WINDOW_S = 40.0
TAKEN_OVER = "already connected, closing old connection"
DETAIL = 'detail="another agent connected with this client id: check for a cloned box or a copied config"'


def test_two_publishers_with_one_client_id_back_off_instead_of_fighting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)
    with (
        MosquittoBroker(tmp_path / "b") as broker,
        Outbox(OutboxConfig(path=tmp_path / "a.sqlite")) as box_a,
        Outbox(OutboxConfig(path=tmp_path / "b.sqlite")) as box_b,
        caplog.at_level(logging.INFO, logger="agent"),
    ):
        mqtt = MqttConfig(port=broker.port)
        with MqttPublisher(mqtt, "cloned-site", box_a) as first:
            first.wait_connected(5)
            with MqttPublisher(mqtt, "cloned-site", box_b) as second:
                time.sleep(WINDOW_S)
                takeovers = broker.log().count(TAKEN_OVER)
                print(f"session take-overs in {WINDOW_S:.0f} s: {takeovers}")
                assert 1 <= takeovers <= 8, f"{takeovers} take-overs in {WINDOW_S:.0f} s"
                warnings = [first.broker_warning, second.broker_warning]
    lines = [r.getMessage() for r in caplog.records if "event=mqtt_session_taken_over" in r.getMessage()]
    assert lines, "no event=mqtt_session_taken_over line"
    assert all("client_id=edge-agent-cloned-site" in line and DETAIL in line for line in lines), lines
    assert any("taken over" in w and "edge-agent-cloned-site" in w for w in warnings), warnings


class TakingOverBroker:
    """A minimal MQTT 5 server that does what EMQX or HiveMQ do to the older of two clients with one id:
    accept the connection (CONNACK success), then send DISCONNECT 0x8E "Session taken over" and close it."""

    CONNACK = bytes([0x20, 0x03, 0x00, 0x00, 0x00])
    DISCONNECT_TAKEN_OVER = bytes([0xE0, 0x02, 0x8E, 0x00])

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, name="test.taking-over-broker", daemon=True)

    def __enter__(self) -> TakingOverBroker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(2)
                try:
                    if not conn.recv(4096).startswith(b"\x10"):
                        continue  # a plain TCP probe, not a CONNECT
                    self.connections += 1
                    conn.sendall(self.CONNACK)
                    time.sleep(0.2)
                    conn.sendall(self.DISCONNECT_TAKEN_OVER)
                except OSError:
                    continue


@pytest.fixture()
def taking_over_broker() -> Iterator[TakingOverBroker]:
    with TakingOverBroker() as broker:
        yield broker


def test_a_broker_that_says_session_taken_over_is_believed_at_once(
    tmp_path: Path,
    taking_over_broker: TakingOverBroker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)
    with (
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        caplog.at_level(logging.INFO, logger="agent"),
        MqttPublisher(MqttConfig(port=taking_over_broker.port), "told-site", box) as publisher,
    ):
        deadline = time.monotonic() + 10
        while publisher.state is not PublisherState.TAKEN_OVER and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.state is PublisherState.TAKEN_OVER
        time.sleep(3)  # long enough for a few reconnects, were it fighting back
        assert taking_over_broker.connections == 1
        assert "edge-agent-told-site" in publisher.broker_warning
    lines = [r.getMessage() for r in caplog.records if "event=mqtt_session_taken_over" in r.getMessage()]
    assert len(lines) == 1 and 'evidence="DISCONNECT 0x8E Session taken over"' in lines[0], lines


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # closed again: nothing listens there
    return f"http://127.0.0.1:{port}/video.mjpg"


def test_a_cloned_box_says_so_in_its_log_and_in_status(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    # A camera that cannot be reached keeps both agents cheap: no frame is decoded or detected.
    (tmp_path / "box-a").mkdir()
    original = write_site_config(
        tmp_path / "box-a" / "site.yaml",
        port=mosquitto.port,
        site_id="cloned-box",
        cameras=[camera("gate", _refused_url())],
    )
    shutil.copytree(original.parent, tmp_path / "box-b")  # the copied SD card: same config, same key
    clone = tmp_path / "box-b" / "site.yaml"
    with AgentProcess(original) as first:
        first.wait_for_log(r"event=connected", 60)
        with AgentProcess(clone) as second:
            second.wait_for_log(r"event=connected", 60)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                victims = [a for a in (first, second) if "event=mqtt_session_taken_over" in a.log]
                if victims:
                    break
                time.sleep(0.2)
            assert victims, f"no take-over reported:\n{first.log[-2000:]}\n{second.log[-2000:]}"
            victim = victims[0]
            line = next(x for x in victim.log.splitlines() if "event=mqtt_session_taken_over" in x)
            assert "client_id=edge-agent-cloned-box" in line and DETAIL in line, line
            for _ in range(40):  # the state file is rewritten every 0.5 s
                result = edge_agent("status", "--config", str(victim.config))
                if "taken over" in result.stdout:
                    break
                time.sleep(0.25)
    assert result.returncode == 150, result.stdout + result.stderr
    assert "agent: degraded" in result.stdout
    assert "taken over" in result.stdout and "edge-agent-cloned-box" in result.stdout, result.stdout
