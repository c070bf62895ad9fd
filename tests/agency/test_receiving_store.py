"""The receiving store on a real SQLite file and a real PostgreSQL database: incidents from their alerts, the
queue's order, statuses, retention."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agent.agency.alert_verifier import AcceptedAlert, AlertVerifier
from agent.agency.status_sender import StatusSigner
from agent.agency.store import StoreReader, StoreWriter, open_database
from agent.agency.store.database import StoreError, schema_revision
from agent.agency.trust_registry import TrustRegistry
from agent.delivery.signing import generate_key_file
from tests.agency.v2_alerts import RECIPIENT, Site, alert_data, sign


@pytest.fixture()
def engine(store_url: str) -> Engine:
    return open_database(store_url)


def _accepted(registry: TrustRegistry, site: Site, data: dict[str, Any]) -> tuple[AcceptedAlert, bytes]:
    message = sign(site.key, data)
    return AlertVerifier(registry, RECIPIENT).check(site.topic(), message), message


def _phase(base: dict[str, Any], n: int, phase: str, severity: str, sent: datetime) -> dict[str, Any]:
    data = copy.deepcopy(base)
    data["identifier"] = f"{base['identifier'][:-4]}{n:04d}"
    data["sent"] = sent.isoformat()
    data["detection"]["phase"] = phase
    data["info"]["severity"] = severity
    return data


def _incident(site: Site, start: datetime) -> list[dict[str, Any]]:
    base = alert_data(site.site_id, 1, sent=start)
    return [
        _phase(base, 1, "start", "Moderate", start),
        _phase(base, 2, "update", "Severe", start + timedelta(seconds=5)),
        _phase(base, 3, "end", "Moderate", start + timedelta(seconds=9)),
    ]


def test_an_incident_sums_up_its_alerts_in_whatever_order_they_arrive(
    engine: Engine, registry: TrustRegistry, north: Site
) -> None:
    start, update, end = _incident(north, datetime.now(UTC) - timedelta(seconds=30))
    writer, reader = StoreWriter(engine), StoreReader(engine)
    for data in (start, end, update):  # the update arrives last (a redelivery)
        assert writer.add_alert(*_accepted(registry, north, data), received_at=1.0) is not None
    (incident,) = reader.queue()
    assert (incident.alert_count, incident.severity, incident.phase) == (3, "Severe", "end")
    assert incident.ended == pytest.approx(datetime.fromisoformat(end["sent"]).timestamp())
    assert incident.last_alert_id == end["identifier"] and incident.state == "new"
    timeline = reader.incident_alerts(north.site_id, incident.incident_id)
    assert [a.phase for a in timeline] == ["start", "update", "end"]


def test_a_second_copy_is_not_stored(engine: Engine, registry: TrustRegistry, north: Site) -> None:
    writer = StoreWriter(engine)
    accepted, message = _accepted(registry, north, alert_data(north.site_id, 1))
    assert writer.add_alert(accepted, message, 1.0) is not None
    assert StoreWriter(open_database(str(engine.url))).add_alert(accepted, message, 2.0) is None
    assert StoreReader(engine).count_alerts() == 1


def test_queue_puts_unacknowledged_first_then_severity_and_keeps_exercises_apart(
    tmp_path: Path, engine: Engine, registry: TrustRegistry, north: Site
) -> None:
    writer, reader = StoreWriter(engine), StoreReader(engine)
    rows = {}
    for n, severity, status in ((1, "Minor", "Actual"), (2, "Severe", "Actual"), (3, "Extreme", "Exercise")):
        data = alert_data(north.site_id, n, status=status)
        data["info"]["severity"] = severity
        row = writer.add_alert(*_accepted(registry, north, data), received_at=float(n))
        assert row is not None
        rows[severity] = row
    signer = StatusSigner(generate_key_file(tmp_path / "k.pem"), RECIPIENT)
    severe = rows["Severe"]
    writer.add_status(
        signer.make(site_id=north.site_id, alert_id=severe.alert_id, incident_id=severe.incident_id, status="verified"),
        published=True,
    )
    assert [i.severity for i in reader.queue()] == ["Minor", "Severe"]
    assert [i.severity for i in reader.queue(exercise=True)] == ["Extreme"]
    verified = reader.incident(north.site_id, severe.incident_id)
    assert verified is not None and (verified.state, verified.acknowledged, verified.validation_level) == (
        "verified",
        True,
        3,
    )
    writer.add_status(
        signer.make(
            site_id=north.site_id,
            alert_id=severe.alert_id,
            incident_id=severe.incident_id,
            status="closed",
            disposition="confirmed",
        ),
        published=True,
    )
    assert [i.severity for i in reader.queue()] == ["Minor"]  # closed leaves the queue
    assert [s.status for s in reader.incident_statuses(north.site_id, severe.incident_id)] == ["verified", "closed"]


def test_a_status_that_could_not_be_sent_is_kept_without_moving_the_incident(
    tmp_path: Path, engine: Engine, registry: TrustRegistry, north: Site
) -> None:
    writer, reader = StoreWriter(engine), StoreReader(engine)
    row = writer.add_alert(*_accepted(registry, north, alert_data(north.site_id, 1)), received_at=1.0)
    assert row is not None
    signer = StatusSigner(generate_key_file(tmp_path / "k.pem"), RECIPIENT)
    status = signer.make(site_id=north.site_id, alert_id=row.alert_id, incident_id=row.incident_id, status="dispatched")
    writer.add_status(status, published=False, error="broker unreachable")
    (history,) = reader.incident_statuses(north.site_id, row.incident_id)
    assert (history.published, history.error) == (False, "broker unreachable")
    incident = reader.incident(north.site_id, row.incident_id)
    assert incident is not None and incident.state == "new"


def test_retention_purges_alerts_past_their_expiry_with_their_incident(
    tmp_path: Path, engine: Engine, registry: TrustRegistry, north: Site
) -> None:
    writer, reader = StoreWriter(engine), StoreReader(engine)
    short = writer.add_alert(*_accepted(registry, north, alert_data(north.site_id, 1, ttl_s=60)), received_at=1.0)
    long = writer.add_alert(*_accepted(registry, north, alert_data(north.site_id, 2, ttl_s=7200)), received_at=1.0)
    assert short is not None and long is not None
    signer = StatusSigner(generate_key_file(tmp_path / "k.pem"), RECIPIENT)
    writer.add_status(
        signer.make(site_id=north.site_id, alert_id=short.alert_id, incident_id=short.incident_id, status="received"),
        published=True,
    )
    purged = writer.purge_expired(short.expires + 1)
    assert (purged.alerts, purged.incidents, purged.statuses) == (1, 1, 1)
    assert [i.incident_id for i in reader.queue()] == [long.incident_id]


def test_the_schema_is_migrated_and_kept_on_reopen(store_url: str, registry: TrustRegistry, north: Site) -> None:
    url = store_url
    first = open_database(url)
    assert schema_revision(first) == "0002"
    StoreWriter(first).add_alert(*_accepted(registry, north, alert_data(north.site_id, 1)), received_at=1.0)
    assert StoreReader(open_database(url)).count_alerts() == 1


def test_a_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="not valid"):
        open_database("no-such-scheme:/x")
