"""Ingest replicas as a user sets them up: `broker.shared_group` makes the alert subscriptions shared, each
`--replica N` gets a client id (a session) of its own, bad names are refused before anything connects, and a
replica that leaves the group for good is dealt no more alerts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.agency.ingest import IngestService, leave_group
from agent.agency.receiving_config import load_receiving_config
from agent.errors import AgentError, ConfigError
from tests.agency.receiving_setup import write_receiving_config
from tests.agency.test_ingest import wait_until
from tests.agency.v2_alerts import Site, publish_raw, signed_alert
from tests.brokers import MosquittoBroker


def test_replicas_share_the_alert_filters_and_each_has_its_own_session(tmp_path: Path, registry_file: Path) -> None:
    config = load_receiving_config(
        write_receiving_config(tmp_path, 1883, registry_file, client_id="rtcc-ingest", shared_group="rtcc")
    )
    first, second = IngestService(config, replica="1"), IngestService(config, replica="2")
    assert first.options.connection.client_id == "rtcc-ingest-1"
    assert second.options.connection.client_id == "rtcc-ingest-2"
    assert first.options.connection.session_expiry_s == 300  # persistent: the broker keeps what is in flight
    plain = tuple(f"$share/rtcc/{f}" for f in first.registry.alert_filters())
    assert first.options.topic_filters == plain
    # Site status and stats are not shared: every replica records them.
    assert first.options.plain_filters and not any(f.startswith("$share/") for f in first.options.plain_filters)


def test_without_a_group_the_filters_are_plain_and_the_client_id_is_the_configured_one(
    tmp_path: Path, registry_file: Path
) -> None:
    config = load_receiving_config(write_receiving_config(tmp_path, 1883, registry_file, client_id="rtcc-ingest"))
    service = IngestService(config)
    assert service.options.connection.client_id == "rtcc-ingest"
    assert service.options.topic_filters == tuple(service.registry.alert_filters())


@pytest.mark.parametrize("name", ["a/b", "#", "two words", ""])
def test_a_replica_name_that_cannot_be_in_a_client_id_is_refused(
    tmp_path: Path, registry_file: Path, name: str
) -> None:
    config = load_receiving_config(write_receiving_config(tmp_path, 1883, registry_file))
    with pytest.raises(AgentError, match="replica name"):
        config.connection(role="ingest", replica=name)


def test_a_shared_group_with_a_topic_separator_names_the_line(tmp_path: Path, registry_file: Path) -> None:
    path = write_receiving_config(tmp_path, 1883, registry_file, shared_group="rtcc/ingest")
    with pytest.raises(ConfigError) as err:
        load_receiving_config(path)
    (issue,) = err.value.issues
    assert issue.field == "broker.shared_group" and issue.line == 8


@pytest.mark.broker
def test_a_replica_that_left_the_group_is_dealt_no_more_alerts(
    tmp_path: Path, broker: MosquittoBroker, registry_file: Path, north: Site
) -> None:
    config = load_receiving_config(
        write_receiving_config(tmp_path, broker.port or 0, registry_file, client_id="leaving", shared_group="leaving")
    )
    with IngestService(config, replica="2"):
        pass  # replica 2 subscribed and stopped: the broker keeps its session in the group
    with IngestService(config, replica="1") as first:
        publish_raw(broker.port or 0, [(north.topic(), signed_alert(north, n)) for n in (1, 2)])
        assert wait_until(lambda: first.counts.stored == 1)
        time.sleep(0.3)
        assert first.counts.stored == 1  # the other was dealt to the absent replica 2 and waits in its session
        assert leave_group(config, "2") == "leaving-2"
        publish_raw(broker.port or 0, [(north.topic(), signed_alert(north, n)) for n in (3, 4, 5)])
        assert wait_until(lambda: first.counts.stored == 4)
