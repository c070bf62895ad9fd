"""Alerts: CAP field values, one incident id per incident, ordered ids, schema v2, schema file current."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import SCHEMA_PATH, Alert, PublishedAlert, json_schema
from agent.config import SiteInfo
from agent.values.rule_events import RuleEvent

SITE = SiteInfo(id="site-1", name="Depot", location={"lat": 51.5, "lon": -0.12})  # type: ignore[arg-type]
T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)


def event(phase: str, key: int, t: float, count: int = 1) -> RuleEvent:
    return RuleEvent(
        phase=phase,
        incident_key=key,
        rule="yard",
        rule_kind="intrusion",
        zone="yard",
        line=None,  # type: ignore[arg-type]
        class_name="person",
        count=count,
        dwell_s=2.0,
        confidence=0.8,
        first_seen_utc=T0,
        last_seen_utc=T0 + timedelta(seconds=t),
        ts_utc=T0 + timedelta(seconds=t),
        severity="Severe",
    )


def test_incident_keeps_one_id_and_messages_reference_its_start() -> None:
    b = AlertBuilder(SITE, "cam-1", status="Actual", ids=Uuid7Factory())
    start, upd, end = b.build(event("start", 1, 0)), b.build(event("update", 1, 5, 2)), b.build(event("end", 1, 9, 0))
    assert start.incidents == upd.incidents == end.incidents == start.detection.incident_id
    assert (start.msgType, upd.msgType, end.msgType) == ("Alert", "Update", "Update")
    assert (start.info.responseType, end.info.responseType) == ("Monitor", "AllClear")
    assert upd.references == end.references == [f"edge-agent@site-1,{start.identifier},{T0.isoformat()}"]
    assert [a.detection.sequence for a in (start, upd, end)] == [1, 2, 3]
    assert len({start.identifier, upd.identifier, end.identifier}) == 3
    assert b.build(event("start", 2, 20)).incidents != start.incidents


def test_cap_values() -> None:
    a = AlertBuilder(SITE, "cam-1", status="Test", ids=Uuid7Factory()).build(event("start", 1, 0))
    assert (a.status, a.scope, a.info.category, a.info.certainty, a.info.severity) == (
        "Test",
        "Restricted",
        "Security",
        "Likely",
        "Severe",
    )
    assert a.info.event == "Intrusion"
    assert a.info.area[0].circle == "51.50000,-0.12000 0.1"
    assert a.sender == "edge-agent@site-1"
    assert (a.schema_version, a.site_id) == (2, "site-1")
    # Who a copy is for and until when is the sharing policy's to say, per recipient.
    assert (a.recipient, a.agreement, a.expires) == (None, None, None)


def test_ids_are_uuid7_time_ordered_and_seedable() -> None:
    ids = Uuid7Factory()
    values = [ids.new(T0 + timedelta(milliseconds=i)) for i in range(50)]
    assert all(uuid.UUID(v).version == 7 for v in values)
    assert values == sorted(values)
    seeded = [Uuid7Factory("cam-1").new(T0) for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_alert_round_trips_through_json() -> None:
    a = AlertBuilder(SITE, "cam-1", status="Actual", ids=Uuid7Factory()).build(event("start", 1, 0))
    assert Alert.model_validate_json(a.to_json_bytes()) == a


def test_published_json_schema_is_current() -> None:
    on_disk = json.loads(SCHEMA_PATH.read_text())
    assert on_disk == json.loads(json.dumps(json_schema())), "run: python -m agent.alerts.schema"


def test_the_published_schema_is_version_2_with_the_receiver_checks_required() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$id"] == "urn:edge-agent:alert:2" and schema["title"] == "Alert"
    assert schema["properties"]["schema_version"]["const"] == 2
    assert {"schema_version", "site_id", "sent", "expires", "recipient", "agreement"} <= set(schema["required"])


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.0", "schema v1 is no longer accepted"),
        (1, "schema v1 is no longer accepted"),
        ("2", "schema_version '2' is not supported \\(only 2\\)"),
        (3, "schema_version 3 is not supported"),
        (True, "schema_version True is not supported"),
    ],
)
def test_another_schema_version_is_refused_in_words(version: object, message: str) -> None:
    a = AlertBuilder(SITE, "cam-1", status="Actual", ids=Uuid7Factory()).build(event("start", 1, 0))
    data = {**json.loads(a.to_json_bytes()), "schema_version": version}
    with pytest.raises(ValidationError, match=message):
        Alert.model_validate(data)


def test_a_published_copy_needs_its_recipient_agreement_and_expiry() -> None:
    a = AlertBuilder(SITE, "cam-1", status="Actual", ids=Uuid7Factory()).build(event("start", 1, 0))
    with pytest.raises(ValidationError) as caught:
        PublishedAlert.model_validate_json(a.to_json_bytes())
    assert {e["loc"][0] for e in caught.value.errors()} == {"expires", "recipient", "agreement"}
    copy = {
        **json.loads(a.to_json_bytes()),
        "recipient": "police",
        "agreement": "dsa-1",
        "expires": "2026-03-02T00:00:00Z",
    }
    assert PublishedAlert.model_validate(copy).expires == T0 + timedelta(hours=1)
