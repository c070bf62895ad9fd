"""What the receiving store must do the same on SQLite and PostgreSQL, and what only PostgreSQL's concurrent
writers need: odd but valid alerts stored whole, a retried write that finds its own row, replicas that start
together migrating once, change ids that become visible in order."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.store import StoreReader, StoreWriter, open_database
from agent.agency.store.backends import hold_change_order
from agent.agency.store.database import schema_revision
from agent.agency.store.tables import changes
from agent.agency.trust_registry import TrustRegistry
from tests.agency.v2_alerts import RECIPIENT, Site, alert_data, sign
from tests.pg import PostgresServer


@pytest.fixture()
def engine(store_url: str) -> Engine:
    return open_database(store_url)


def _store(engine: Engine, registry: TrustRegistry, site: Site, data: dict[str, Any], at: float) -> Any:
    message = sign(site.key, data)
    accepted = AlertVerifier(registry, RECIPIENT).check(site.topic(), message)
    return StoreWriter(engine).add_alert(accepted, message, at), message


def test_a_valid_alert_with_long_text_a_nul_and_a_huge_count_is_stored_with_its_exact_bytes(
    engine: Engine, registry: TrustRegistry, north: Site
) -> None:
    # The schema bounds none of these; PostgreSQL would refuse each as it is, SQLite would keep it.
    data = alert_data(north.site_id, 1)
    data["detection"]["rule_kind"] = "k" * 300
    data["detection"]["count"] = 2**40
    data["info"]["headline"] = "before\x00after"
    data["incidents"] = "i" * 250
    row, message = _store(engine, registry, north, data, 1.0)
    assert row is not None
    assert (row.rule_kind, row.count, row.headline) == ("k" * 64, 2**31 - 1, "beforeafter")
    assert row.incident_id == "i" * 200
    assert row.message.encode() == message and row.payload()["detection"]["count"] == 2**40
    assert row.payload()["info"]["headline"] == "before\x00after"
    (incident,) = StoreReader(engine).queue()
    assert incident.incident_id == "i" * 200 and incident.alert_count == 1


def test_a_retried_write_whose_commit_went_through_finds_its_own_row(
    engine: Engine, registry: TrustRegistry, north: Site
) -> None:
    data = alert_data(north.site_id, 1)
    first, _ = _store(engine, registry, north, data, 10.5)
    again, _ = _store(engine, registry, north, data, 10.5)  # the same attempt's time: the row is its own
    other, _ = _store(engine, registry, north, data, 11.0)  # another delivery or replica: a duplicate
    assert first is not None and again is not None and again.seq == first.seq
    assert other is None
    assert StoreReader(engine).count_alerts() == 1


def _open_together(url: str, count: int = 4) -> list[BaseException]:
    failures: list[BaseException] = []

    def open_one() -> None:
        try:
            open_database(url).dispose()
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            failures.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return failures


def test_replicas_that_start_together_on_an_empty_postgresql_database_migrate_it_once(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database()
    assert _open_together(url) == []
    assert schema_revision(open_database(url)) is not None


def test_replicas_that_start_together_on_a_new_sqlite_file_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new/receiving.sqlite"
    assert _open_together(url) == []
    assert schema_revision(open_database(url)) is not None


def test_on_postgresql_a_change_id_taken_later_waits_for_the_earlier_ones_commit(postgres_url: str) -> None:
    engine = open_database(postgres_url)
    taken: list[int] = []

    def second_writer() -> None:
        with engine.begin() as c:
            hold_change_order(c)
            key = c.execute(changes.insert().values(at=2.0, site_id="s", kind="site")).inserted_primary_key
            taken.append(int(key[0]))

    with engine.begin() as first:
        hold_change_order(first)
        mine = int(first.execute(changes.insert().values(at=1.0, site_id="s", kind="site")).inserted_primary_key[0])
        other = threading.Thread(target=second_writer)
        other.start()
        time.sleep(0.3)
        assert taken == []  # still waiting: it cannot take (let alone commit) an id before this one commits
    other.join(10)
    assert taken and taken[0] > mine
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM changes")).scalar_one() == 2
