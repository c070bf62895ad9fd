"""A site and an ingest service on two separate Mosquittos: the site's broker is killed mid-run, the site
carries on through the other one, and every alert is stored once.

Two Mosquittos that are not bridged share nothing, so the receiving side
listens on both (`broker.connect_to: every`): whatever either broker
acknowledged to the site it delivers to the ingest's session there. A
bridge between them instead would lose what the dead broker had
acknowledged but not yet forwarded.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from agent.agency.receiving_config import load_receiving_config
from agent.config import MqttConfig, load_config
from agent.config.messaging import BrokerAddress
from agent.errors import ConfigError
from tests.agency.receiving_setup import running_ingest, write_receiving_config
from tests.agency.v2_alerts import Site, write_registry
from tests.brokers import MosquittoBroker
from tests.delivery.failover_run import run_through_failover

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[2]


def _kill(broker: MosquittoBroker) -> None:
    """SIGKILL, as a broker machine that fails: no clean shutdown, nothing saved."""
    proc = broker._proc  # the fixture has no kill of its own
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_the_site_fails_over_to_the_second_broker_and_every_alert_is_stored_once(tmp_path: Path) -> None:
    site = Site("depot-failover")
    registry = write_registry(tmp_path / "registry.yaml", [site])
    with MosquittoBroker(tmp_path / "a") as first, MosquittoBroker(tmp_path / "b") as second:
        assert first.port is not None and second.port is not None
        urls = f"[mqtt://127.0.0.1:{first.port}, mqtt://127.0.0.1:{second.port}]"
        config = write_receiving_config(tmp_path / "rx", first.port, registry, client_id="failover-ingest")
        config.write_text(
            config.read_text().replace(
                f"  url: mqtt://127.0.0.1:{first.port}\n", f"  urls: {urls}\n  connect_to: every\n"
            )
        )
        mqtt = MqttConfig(brokers=[BrokerAddress(host="127.0.0.1", port=p) for p in (first.port, second.port)])
        with running_ingest(load_receiving_config(config)) as service:
            run = run_through_failover(tmp_path, site, mqtt, service, lambda: _kill(first))
    assert run.put_after_stop > 0  # the broker went away while alerts kept coming
    assert run.outbox_empty  # every alert was acknowledged, by one broker or the other
    assert sorted(run.stored_ids) == sorted(run.sent_ids)  # each one stored, and only once
    # The site's feedback subscription was made again on the second broker: it hears `received` there.
    assert run.received_after_stop == len(run.sent_ids) - len(run.sent_ids) // 3


def test_a_site_config_lists_its_brokers_in_order() -> None:
    mqtt = MqttConfig(brokers=[BrokerAddress(host="a.example", port=8883), BrokerAddress(host="b.example")])
    assert [str(b) for b in mqtt.broker_addresses] == ["a.example:8883", "b.example:1883"]
    assert [str(b) for b in MqttConfig(host="c.example").broker_addresses] == ["c.example:1883"]


def test_a_broker_list_mistake_names_file_line_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT_MQTT_PASSWORD", "s3cret")
    site = tmp_path / "site.yaml"
    shutil.copy(REPO / "config" / "site.example.yaml", site)
    text = site.read_text()
    start = text.index("\nmqtt:\n") + len("\nmqtt:\n")
    line = text[:start].count("\n") + 1  # the first line inside the section

    def issues(brokers: str) -> list[str]:
        site.write_text(text[:start] + brokers + text[start:])
        with pytest.raises(ConfigError) as err:
            load_config(site, [])
        return [str(i) for i in err.value.issues]

    port = issues("  brokers:\n    - {host: a.example, port: 70000}\n")
    assert port == [f"{site}:{line + 1}: mqtt.brokers.0.port: Input should be less than or equal to 65535"]
    [both] = issues("  brokers:\n    - {host: a.example, port: 8883}\n")  # the example sets host and port too
    assert both == f"{site}:{line}: mqtt: give host and port (one broker) or brokers (a list), not both"
