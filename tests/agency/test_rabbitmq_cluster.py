"""A site and the ingest service on a real three-node RabbitMQ cluster (MQTT 3.1.1): the node the site
publishes through is killed mid-run, the site fails over to the node the ingest reads from, and every
alert is stored once.

RabbitMQ 3.10's MQTT plugin speaks MQTT 3.1 and 3.1.1 only (no shared
subscriptions, so one ingest replica), keeps a persistent session (clean
session off) as a durable queue, here a quorum queue replicated on a majority
of nodes (`mqtt.durable_queue_type = quorum`), and acknowledges a QoS 1
publish only once that queue has it. It also needs a majority of nodes to
accept any new MQTT connection (client ids are tracked in a Raft group), so
a cluster that must survive a node takes three: see tests/rabbitmq.py.
Starting the cluster takes about 25 s; the test shares one per session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.agency.receiving_config import load_receiving_config
from agent.config import MqttConfig
from agent.config.messaging import BrokerAddress
from tests.agency.receiving_setup import running_ingest, write_receiving_config
from tests.agency.v2_alerts import Site, write_registry
from tests.delivery.failover_run import run_through_failover
from tests.rabbitmq import RabbitCluster, RabbitUnavailable

pytestmark = pytest.mark.broker


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """One three-node RabbitMQ cluster for the session; skips, saying why, when RabbitMQ cannot run here."""
    try:
        cluster = RabbitCluster(3)
    except RabbitUnavailable as err:
        pytest.skip(f"RabbitMQ unavailable: {err}")
    try:
        cluster.start()
    except RabbitUnavailable as err:
        cluster.close()
        pytest.skip(f"RabbitMQ cluster did not start: {err}")
    yield cluster
    cluster.close()


def test_a_node_that_dies_loses_no_alert_and_stores_none_twice(tmp_path: Path, rabbit_cluster: RabbitCluster) -> None:
    a, b, c = rabbit_cluster.nodes
    assert rabbit_cluster.running_nodes() == sorted(n.name for n in rabbit_cluster.nodes)
    site = Site("depot-cluster")
    registry = write_registry(tmp_path / "registry.yaml", [site])
    config = write_receiving_config(tmp_path / "rx", b.mqtt_port, registry, client_id="cluster-ingest")
    # The ingest reads from node b (then c); the site publishes through node a (then b).
    text = config.read_text().replace(
        f"  url: mqtt://127.0.0.1:{b.mqtt_port}\n", f'  urls: [{b.url}, {c.url}]\n  protocol: "3.1.1"\n'
    )
    config.write_text(text)
    mqtt = MqttConfig(brokers=[BrokerAddress(host="127.0.0.1", port=n.mqtt_port) for n in (a, b)], protocol="3.1.1")
    with running_ingest(load_receiving_config(config)) as service:
        run = run_through_failover(tmp_path, site, mqtt, service, lambda: rabbit_cluster.stop_node(0))
    assert run.put_after_stop > 0
    assert run.outbox_empty
    assert sorted(run.stored_ids) == sorted(run.sent_ids)  # nothing lost, nothing stored twice
    assert run.received_after_stop == len(run.sent_ids) - len(run.sent_ids) // 3
