"""A fleet of 200 sites, each with its own key, publishing signed alerts through a real Mosquitto to ingest
replicas (real `edge-agent console ingest` processes) that share one MQTT 5 shared subscription and one
PostgreSQL: every alert is stored exactly once and answered `received` once, with one replica, with two, and
with one of two killed (SIGKILL) mid-run and started again. The benchmark (benchmarks/bench_fleet.py) runs the
same fleet at 1,000 sites for figures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agent.agency.store import open_database
from tests.agency.fleet import Fleet, IngestReplica, Published, SiteConnections, StoreCheck, ingest_fleet, store_check

pytestmark = pytest.mark.broker

SITES = 200
RATE_HZ = 250.0


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet(SITES)


@pytest.fixture()
def registry_file(tmp_path: Path, fleet: Fleet) -> Path:
    return fleet.write_registry(tmp_path / "registry.yaml")


def _wait_stored(engine: Engine, connections: SiteConnections, published: Published, timeout_s: float) -> StoreCheck:
    """Until every published alert is stored and the `received` statuses stop coming (or the time is up); what SQL
    says then."""
    deadline, count = time.monotonic() + timeout_s, len(published.sent)
    while store_check(engine).rows < count and time.monotonic() < deadline:
        connections.pump(0.1)
    answered = -1
    while answered != len(published.received) and time.monotonic() < deadline:
        answered = len(published.received)
        connections.wait_received(count, 0.5)  # a second `received` for one alert, were there one, would come now
    return store_check(engine)


def _assert_each_stored_once(check: StoreCheck, published: Published) -> None:
    assert check.alert_ids == set(published.sent), "stored alerts differ from those published"
    assert (check.rows, check.keys) == (len(published.sent), len(published.sent))
    assert check.received == len(published.sent) and check.answered_twice == 0
    assert set(published.received) == set(published.sent)
    assert max(published.answers.values()) == 1


@pytest.mark.parametrize("replicas", [1, 2])
def test_every_alert_is_stored_once(
    tmp_path: Path, fleet: Fleet, registry_file: Path, postgres_url: str, replicas: int
) -> None:
    items = fleet.alerts(2 * SITES, first=replicas * 10_000)
    with ingest_fleet(tmp_path, registry_file, postgres_url, replicas) as (broker, _, running):
        with SiteConnections(broker.port or 0, fleet.sites) as connections:
            published = connections.publish(items, RATE_HZ)
            check = _wait_stored(open_database(postgres_url), connections, published, 30)
        counts = [r.stop() for r in running]
    _assert_each_stored_once(check, published)
    assert counts == [0] * replicas
    if replicas == 2:  # both took a share
        assert all("event=status_sent" in r.log() for r in running)


def test_a_replica_killed_mid_run_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, fleet: Fleet, registry_file: Path, postgres_url: str
) -> None:
    # Mosquitto deals each site's messages round the group in turn, starting with the first member to subscribe:
    # two alerts per site give each replica one.
    items = fleet.alerts(4 * SITES, first=30_000)
    burst, rest = items[: 2 * SITES], items[2 * SITES :]
    with ingest_fleet(tmp_path, registry_file, postgres_url, 2) as (broker, _, running):
        victim = running[1]
        with SiteConnections(broker.port or 0, fleet.sites) as connections:
            # A burst, then SIGKILL while the victim still works through its share: what it had taken but not
            # stored stays in its session, unacknowledged, and its share of what follows queues there too
            # (Mosquitto deals a shared subscription's messages round the group, absent members included).
            connections.publish(burst, 0)
            connections.pump_until(lambda: False, 0.5)  # let it store some first
            victim.kill()
            published = connections.publish(rest, RATE_HZ)
            restarted = IngestReplica(victim.config_file, victim.replica, tmp_path).start()
            running.append(restarted)
            restarted.wait_ready()
            check = _wait_stored(open_database(postgres_url), connections, published, 60)
    assert check.alert_ids == set(published.sent), "stored alerts differ from those published"
    assert (check.rows, check.keys) == (len(items), len(items))
    # One `received` at most for each alert, at the site and in the store. The only ones missing can be of alerts
    # the killed replica had stored: a `received` still in its client's queue died with it (or the kill fell
    # between the commit and the publish), and the copy delivered again is a duplicate, acknowledged in silence.
    killed_stored = check.rows - sum(r.stored() for r in running if r is not victim)
    assert check.answered_twice == 0 and max(published.answers.values()) == 1
    assert len(items) - killed_stored <= len(published.received) <= len(items)
    assert len(items) - killed_stored <= check.received <= len(items)
    # The broker did send the restarted replica again what the killed one had in flight (the DUP flag set).
    assert "Sending PUBLISH to fleet-ingest-2 (d1" in broker.log()
