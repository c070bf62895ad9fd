"""The publisher against real Mosquitto processes: order, outages, kill -9, status, the bridge."""

from __future__ import annotations

import linecache
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import MqttConfig, OutboxConfig
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher, PublisherState
from agent.delivery.signing import AlertSigner
from tests.brokers import MosquittoBroker
from tests.delivery.sample_alerts import ReceiverFactory, drain, make_alert, number, numbers

pytestmark = pytest.mark.broker
HERE = Path(__file__).resolve().parent


def _retained_status(port: int, topic: str) -> str | None:
    """Read the retained message of `topic` with a fresh client (None when there is none)."""
    got: list[bytes] = []
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        got.append(bytes(msg.payload))
        done.set()

    client.on_message = on_message
    client.on_subscribe = lambda c, u, mid, rc, p: threading.Timer(0.3, done.set).start()
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    done.wait(3)
    client.disconnect()
    client.loop_stop()
    return got[0].decode() if got else None


def test_each_alert_says_it_is_a_schema_2_jws(tmp_path: Path, mosquitto: MosquittoBroker, signer: AlertSigner) -> None:
    """A receiver can tell what a message is before parsing it: MQTT 5 content type and user properties."""
    assert mosquitto.port is not None
    got: list[paho.MQTTMessage] = []
    arrived = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        got.append(msg)
        arrived.set()

    client.on_message = on_message
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe("edge/site-p/+/alerts/#", qos=1)
    client.loop_start()
    try:
        time.sleep(0.3)
        with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box:
            box.put(make_alert(signer, "edge/site-p/cam/alerts/yard", 1))
            with MqttPublisher(MqttConfig(port=mosquitto.port), "site-p", box) as pub:
                pub.wait_connected(5)
                assert pub.flush(10)
        assert arrived.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    props = got[0].properties
    assert props is not None and props.ContentType == "application/jose+json"
    assert dict(props.UserProperty)["schema-version"] == "2"


def test_delivers_in_order_then_status_online_and_stopped(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    signer: AlertSigner,
    receiver_factory: ReceiverFactory,
) -> None:
    assert mosquitto.port is not None
    receiver = receiver_factory(f"mqtt://127.0.0.1:{mosquitto.port}", "edge/site-o/+/alerts/#")
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box:
        for n in range(200):
            box.put(make_alert(signer, "edge/site-o/cam/alerts/yard", n))
        with MqttPublisher(MqttConfig(port=mosquitto.port), "site-o", box) as pub:
            pub.wait_connected(5)
            assert pub.state is PublisherState.CONNECTED
            assert _retained_status(mosquitto.port, "edge/site-o/status") == "online"
            assert pub.flush(15)
        stats = box.stats()
    got = drain(receiver, 200)
    assert numbers(got) == list(range(200))
    assert (stats.delivered, stats.depth) == (200, 0)
    assert _retained_status(mosquitto.port, "edge/site-o/status") == "stopped"


def test_nothing_is_deleted_without_puback_and_an_outage_loses_nothing(
    tmp_path: Path,
    signer: AlertSigner,
    receiver_factory: ReceiverFactory,
) -> None:
    with (
        MosquittoBroker(tmp_path / "b", persistent=True) as broker,
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
    ):
        assert broker.port is not None
        receiver = receiver_factory(
            f"mqtt://127.0.0.1:{broker.port}", "edge/site-r/+/alerts/#", client_id="agency-r", session_expiry_s=300
        )
        with MqttPublisher(MqttConfig(port=broker.port), "site-r", box, reconnect_max_s=0.5) as pub:
            pub.wait_connected(5)
            topic = "edge/site-r/cam/alerts/yard"
            for n in range(100):
                box.put(make_alert(signer, topic, n))
            assert len(drain(receiver, 100)) == 100
            broker.stop()
            for n in range(100, 300):
                box.put(make_alert(signer, topic, n))
            time.sleep(3)  # a short outage: nothing can be acknowledged meanwhile
            assert box.stats().depth == 200 and pub.state is not PublisherState.CONNECTED
            broker.start()
            got = drain(receiver, 200)
            assert pub.flush(15)
        stats = box.stats()
    assert numbers(got) == list(range(100, 300))
    assert stats.delivered == 300


def test_a_killed_publisher_delivers_the_rest_after_restart(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    signing_key_file: Path,
    receiver_factory: ReceiverFactory,
) -> None:
    assert mosquitto.port is not None
    receiver = receiver_factory(f"mqtt://127.0.0.1:{mosquitto.port}", "edge/site-k/+/alerts/#")
    outbox_path = tmp_path / "o.sqlite"
    base = [
        sys.executable,
        str(HERE / "publisher_process.py"),
        "--port",
        str(mosquitto.port),
        "--outbox",
        str(outbox_path),
        "--key",
        str(signing_key_file),
    ]
    proc = subprocess.Popen([*base, "--count", "400", "--max-inflight", "1"], stdout=subprocess.PIPE, text=True)
    try:
        before = {number(r) for r in drain(receiver, 50, timeout_s=10)}
    finally:
        proc.kill()  # SIGKILL mid-stream: no clean shutdown, no 'stopped' status
        proc.wait()
    assert len(before) == 50
    assert _retained_status(mosquitto.port, "edge/site-k/status") == "offline"  # the last will
    with Outbox(OutboxConfig(path=outbox_path)) as box:
        left = box.stats().depth
    # At most one (max-inflight 1) may have been delivered with its PUBACK not yet settled:
    # it stays in the outbox and is sent again, which the subscriber's dedup absorbs.
    assert 0 < left <= 350 + 1
    out = subprocess.run([*base, "--count", "0"], capture_output=True, text=True, timeout=60)
    assert "drained" in out.stdout, out.stderr
    rest = numbers(drain(receiver, 400, timeout_s=1.0))
    assert before | set(rest) == set(range(400))  # every committed alert arrived...
    assert len(before) + len(rest) == 400  # ...and none was accepted twice
    assert receiver.rejected == 0


def test_bridge_carries_alerts_from_site_broker_to_agency_broker(
    tmp_path: Path,
    signer: AlertSigner,
    receiver_factory: ReceiverFactory,
) -> None:
    with MosquittoBroker(tmp_path / "agency") as agency:
        bridge = (
            f"connection to-agency\naddress 127.0.0.1:{agency.port}\n"
            "topic edge/site-b/# out 1\nbridge_protocol_version mqttv311\n"
            "cleansession true\nrestart_timeout 1\n"
        )
        with (
            MosquittoBroker(tmp_path / "site", extra_conf=bridge) as local,
            Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
        ):
            assert local.port is not None
            receiver = receiver_factory(f"mqtt://127.0.0.1:{agency.port}", "edge/site-b/+/alerts/#")
            time.sleep(0.5)  # the bridge connects on its own schedule
            with MqttPublisher(MqttConfig(port=local.port), "site-b", box) as pub:
                for n in range(20):
                    box.put(make_alert(signer, "edge/site-b/cam/alerts/yard", n))
                pub.wait_connected(5)
                assert pub.flush(10)
                got = drain(receiver, 20, timeout_s=5)
    assert numbers(got) == list(range(20))


def test_delivery_times_are_measured_from_the_outbox_to_the_puback(
    tmp_path: Path, mosquitto: MosquittoBroker, signer: AlertSigner
) -> None:
    assert mosquitto.port is not None
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box:
        # Twenty alerts that waited about a second in the outbox before the publisher started.
        for n in range(20):
            box.put(make_alert(signer, "edge/site-t/cam/alerts/yard", n))
        time.sleep(1.0)
        with MqttPublisher(MqttConfig(port=mosquitto.port), "site-t", box) as pub:
            pub.wait_connected(5)
            assert pub.flush(15)
            deadline = time.monotonic() + 5
            while pub.counters().delivery_seconds.count < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            delivery = pub.counters().delivery_seconds
    assert delivery.count == 20
    assert 1.0 * 20 <= delivery.sum_s < 30 * 20
    assert delivery.quantile(0.5) >= 1.0


def _race_losing_tracer(races: list[int]):  # type: ignore[no-untyped-def]
    """A trace function that makes paho's `loop_stop` lose its race every time, in paho's own code:
    the network thread waits, just before it clears its handle, until `loop_stop` has passed its
    `self._thread is None` check; `loop_stop` then waits there until the network thread has ended."""
    checked: dict[int, threading.Event] = {}

    def held(client: object) -> threading.Event:
        return checked.setdefault(id(client), threading.Event())

    def in_network_thread(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event == "line" and _source_line(frame) == "self._thread = None":
            held(frame.f_locals["self"]).wait(5)
        return in_network_thread

    def in_loop_stop(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event == "line" and _source_line(frame).startswith("if threading.current_thread() != self._thread"):
            client = frame.f_locals["self"]
            network = client._thread
            held(client).set()
            if network is not None:
                network.join(10)
            races.append(int(network is not None and client._thread is None))
        return in_loop_stop

    def tracer(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event != "call" or "paho" not in frame.f_code.co_filename:
            return None
        return {"loop_stop": in_loop_stop, "_thread_main": in_network_thread}.get(frame.f_code.co_name)

    return tracer


def _source_line(frame) -> str:  # type: ignore[no-untyped-def]
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()


def test_losing_pahos_loop_stop_race_does_not_end_the_connection_thread(
    tmp_path: Path, signer: AlertSigner, receiver_factory: ReceiverFactory
) -> None:
    # paho's loop_stop checks its thread handle, then joins it; the network thread clears the
    # handle as it returns. Ending between the two raises AttributeError in the caller, which
    # unguarded would end `mqtt-connection` and with it every later reconnect.
    races: list[int] = []
    with (
        MosquittoBroker(tmp_path / "b") as broker,
        Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box,
    ):
        # Threads started from now on (the publisher's, paho's) are traced; a thread reads the hook
        # after `start` returns, so it stays set until the test ends.
        threading.settrace(_race_losing_tracer(races))
        assert broker.port is not None
        pub = MqttPublisher(MqttConfig(port=broker.port), "site-z", box, reconnect_max_s=0.5).__enter__()
        try:
            pub.wait_connected(5)
            broker.restart()  # the session ends: mqtt-connection stops paho's thread, and loses the race
            deadline = time.monotonic() + 15
            while not races and time.monotonic() < deadline:
                time.sleep(0.05)
            assert races and all(races), "the race was not reproduced"
            pub.wait_connected(15)
            assert pub.threads_alive
            receiver = receiver_factory(f"mqtt://127.0.0.1:{broker.port}", "edge/site-z/+/alerts/#")
            box.put(make_alert(signer, "edge/site-z/cam/alerts/yard", 1))
            assert numbers(drain(receiver, 1)) == [1]
        finally:
            threading.settrace(None)  # removes the hook
            pub.close()
