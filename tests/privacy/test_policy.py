"""Sharing policies: allow-lists, default metadata-only view, pseudonyms, location, versions, per-recipient stamps."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from agent.alerts.fields import ALWAYS_KEPT, DEFAULT_FIELDS, alert_leaf_paths
from agent.alerts.schema import Alert, PublishedAlert
from agent.config import PoliciesConfig, RecipientPolicy
from agent.delivery.routing import AlertDispatcher, OutgoingAlert, recipient_topics
from agent.errors import ModelError
from agent.privacy.policy import SharingPolicy
from agent.privacy.pseudonyms import PseudonymKey, load_or_create_pseudonym_key
from agent.privacy.snapshots import SnapshotMaker
from agent.values.alert_moment import AlertMoment

KEY = PseudonymKey.from_secret(b"k" * 32)
DEFAULT_EXPIRY_S = 3600
# Stamped by the policy on every view, whatever the allow-list says.
STAMPED = {"recipient", "agreement", "expires", "privacy.policy_version", "privacy.pseudonym_key_id"}


def sign_as_json(view: Mapping[str, Any]) -> bytes:
    """A stand-in signer that keeps the view readable (the real one is tested in tests/delivery)."""
    return json.dumps({"alert": view}).encode()


def no_face_detector() -> Any:
    raise ModelError("no face detector in this test")


def dispatcher(*recipients: RecipientPolicy) -> AlertDispatcher:
    policies = PoliciesConfig(recipients=list(recipients))
    sharing = SharingPolicy(
        policies,
        site_id="depot-7",
        key=KEY,
        default_expiry_s=DEFAULT_EXPIRY_S,
        snapshots=SnapshotMaker(no_face_detector),
    )
    return AlertDispatcher(
        policies, recipient_topics("edge", "depot-7"), sign_as_json, default_expiry_s=DEFAULT_EXPIRY_S, sharing=sharing
    )


def view_of(msg: OutgoingAlert) -> dict[str, Any]:
    return dict(json.loads(msg.payload)["alert"])


def leaves(view: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in view.items():
        path = f"{prefix}{key}"
        items = value if isinstance(value, list) else [value]
        dicts = [v for v in items if isinstance(v, dict)]
        if dicts:
            for d in dicts:
                out |= leaves(d, path + ".")
        else:
            out.add(path)
    return out


@pytest.mark.parametrize("field", [p for p in alert_leaf_paths() if p not in ALWAYS_KEPT])
def test_a_field_missing_from_the_allow_list_never_reaches_the_recipient(full_alert: Alert, field: str) -> None:
    allowed = [p for p in alert_leaf_paths() if p != field]
    [msg] = dispatcher(RecipientPolicy(name="agency", fields=allowed)).route(full_alert)
    got = leaves(view_of(msg))
    assert field not in got
    assert set(allowed) <= got, "every allowed field of a fully populated alert is sent"
    # Nor does its value leak through another field.
    value = json.dumps(_value_at(full_alert.model_dump(mode="json"), field))
    if value.startswith('"value-of-'):
        assert value.strip('"') not in msg.payload.decode()


def _value_at(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[0][part] if isinstance(data, list) else data[part]
    return data


def test_default_recipient_gets_metadata_only(full_alert: Alert) -> None:
    image = np.full((120, 160, 3), 200, np.uint8)
    moment = AlertMoment(image, np.array([[10, 10, 50, 100]], np.float32), np.zeros((0, 4), np.float32))
    policies = PoliciesConfig()
    sharing = SharingPolicy(policies, site_id="depot-7", key=KEY, default_expiry_s=DEFAULT_EXPIRY_S)
    topics = recipient_topics("edge", "depot-7")
    [msg] = AlertDispatcher(policies, topics, sign_as_json, default_expiry_s=DEFAULT_EXPIRY_S, sharing=sharing).route(
        full_alert, moment
    )
    view = view_of(msg)
    assert leaves(view) - STAMPED <= set(DEFAULT_FIELDS) | set(ALWAYS_KEPT)
    assert "snapshot" not in view and msg.snapshot == "none" and not msg.personal_data
    assert view["detection"]["incident_id"] == full_alert.detection.incident_id


def test_camera_id_leaves_as_a_per_recipient_pseudonym(full_alert: Alert) -> None:
    d = dispatcher(
        RecipientPolicy(name="police-dispatch"),
        RecipientPolicy(name="firm-soc"),
        RecipientPolicy(name="firm-archive", pseudonym_group="firm"),
        RecipientPolicy(name="firm-ops", pseudonym_group="firm"),
    )
    msgs = {m.recipient: m for m in d.route(full_alert)}
    cams = {name: view_of(m)["detection"]["camera_id"] for name, m in msgs.items()}
    for name, m in msgs.items():
        assert "north-gate-cam" not in m.payload.decode() and "north-gate-cam" not in m.topic
        assert cams[name].startswith("cam-") and cams[name] in m.topic
        assert cams[name] not in view_of(m)["info"]["headline"]  # free text never names a camera
    assert cams["police-dispatch"] != cams["firm-soc"], "recipients cannot join on camera ids"
    assert cams["firm-archive"] == cams["firm-ops"], "a shared pseudonym group can"
    assert msgs["police-dispatch"].topic.endswith("/alerts/yard/police-dispatch")
    # Stable for one recipient across alerts: the recipient can follow one camera.
    assert view_of(d.route(full_alert)[0])["detection"]["camera_id"] == cams["police-dispatch"]


def test_pseudonym_key_file_is_private_and_rotation_changes_key_id(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pseudonym.key"
    key = load_or_create_pseudonym_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_pseudonym_key(path) == key
    path.rename(tmp_path / "old.key")
    rotated = load_or_create_pseudonym_key(path)
    assert rotated.key_id != key.key_id
    args = ("cam", "north-gate-cam")
    assert rotated.pseudonym(*args, group="g", site_id="s") != key.pseudonym(*args, group="g", site_id="s")
    assert "secret" not in repr(key) and key.secret.hex() not in repr(key)


def test_location_is_rounded_or_dropped(full_alert: Alert) -> None:
    d = dispatcher(
        RecipientPolicy(name="coarse", location_decimals=2),
        RecipientPolicy(name="zone", location="zone_only"),
    )
    coarse, zone = (view_of(m) for m in d.route(full_alert))
    centre, radius = coarse["info"]["area"][0]["circle"].split(" ")
    assert centre == "51.50,-0.12" and float(radius) > 0.7  # grows to cover the rounding
    assert "circle" not in zone["info"]["area"][0] and zone["info"]["area"][0]["areaDesc"]
    assert "51.50" not in json.dumps(zone)


def test_rules_severity_retention_and_policy_version(full_alert: Alert) -> None:
    d = dispatcher(
        RecipientPolicy(name="police-dispatch", rules=["yard"], min_severity="Severe", retention_s=600),
        RecipientPolicy(name="other-rule", rules=["fence"]),
        RecipientPolicy(name="extreme-only", min_severity="Extreme"),
    )
    [msg] = d.route(full_alert)
    assert msg.recipient == "police-dispatch" and msg.expiry_s == 600
    assert view_of(msg)["privacy"]["policy_version"] == msg.policy_version
    changed = PoliciesConfig(recipients=[RecipientPolicy(name="police-dispatch", rules=["yard"], retention_s=600)])
    assert SharingPolicy(changed, site_id="depot-7", key=KEY, default_expiry_s=60).version != msg.policy_version


def test_config_rejects_unknown_fields_and_shared_topics() -> None:
    with pytest.raises(ValidationError, match=r"info\.nope"):
        RecipientPolicy(name="x", fields=["info.nope"])
    with pytest.raises(ValidationError, match="recipient topic"):
        PoliciesConfig(
            recipients=[RecipientPolicy(name="a", topic_suffix="same"), RecipientPolicy(name="b", topic_suffix="same")]
        )
    with pytest.raises(ValidationError):
        RecipientPolicy(name="x", snapshots={"enabled": True, "face_margin": 0.1})  # type: ignore[arg-type]


def test_unredacted_snapshots_need_the_explicit_flag_and_are_loud(
    full_alert: Alert, caplog: pytest.LogCaptureFixture
) -> None:
    image = np.full((120, 160, 3), 90, np.uint8)
    moment = AlertMoment(image, np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32))
    soc = RecipientPolicy.model_validate(
        {
            "name": "firm-soc",
            "fields": ["*"],
            "snapshots": {"enabled": True, "unredacted_snapshots_i_accept_personal_data": True},
        }
    )
    agent_logger = logging.getLogger("agent")
    propagate, agent_logger.propagate = agent_logger.propagate, True  # let caplog see agent.* events
    try:
        with caplog.at_level(logging.WARNING, logger="agent"):
            d = dispatcher(soc)
    finally:
        agent_logger.propagate = propagate
    assert any(
        "personal_data_sharing_enabled" in r.getMessage() and "firm-soc" in r.getMessage() for r in caplog.records
    )
    [msg] = d.route(full_alert, moment)
    assert msg.personal_data and msg.snapshot == "unredacted"
    assert view_of(msg)["snapshot"]["redaction"] == "unredacted"


def test_redacted_snapshot_is_withheld_when_no_face_detector_can_run(full_alert: Alert) -> None:
    image = np.full((120, 160, 3), 90, np.uint8)
    moment = AlertMoment(image, np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32))
    police = RecipientPolicy.model_validate({"name": "police", "snapshots": {"enabled": True}})
    [msg] = dispatcher(police).route(full_alert, moment)
    snap = view_of(msg)["snapshot"]
    assert msg.snapshot == "withheld" and not msg.personal_data
    assert snap == {"withheld": "face detector unavailable: no face detector in this test"}


def test_every_view_validates_against_the_published_schema(full_alert: Alert) -> None:
    """The default view keeps every required field, so subscribers can validate it as an `Alert`."""
    assert full_alert.snapshot is not None  # set on the input: the policy must not pass it on
    [msg] = dispatcher(RecipientPolicy(name="default")).route(full_alert)
    parsed = PublishedAlert.model_validate(view_of(msg))
    assert parsed.recipient == "default" and parsed.privacy is not None
    assert parsed.snapshot is None and parsed.detection.camera_id.startswith("cam-")
    [everything] = dispatcher(RecipientPolicy(name="all", fields=["*"])).route(full_alert)
    assert "snapshot" not in view_of(everything)


def test_every_view_carries_the_site_recipient_agreement_and_absolute_expiry(full_alert: Alert) -> None:
    """What a receiver checks is in every copy, even one whose allow-list names a single field."""
    d = dispatcher(
        RecipientPolicy(name="police-dispatch", agreement="dsa-2026-07", retention_s=600, fields=["info.headline"]),
        RecipientPolicy(name="firm-soc"),
    )
    narrow, full = (view_of(m) for m in d.route(full_alert))
    assert (narrow["site_id"], narrow["recipient"], narrow["agreement"]) == (
        "depot-7",
        "police-dispatch",
        "dsa-2026-07",
    )
    assert narrow["expires"] == "2026-03-01T23:10:00.000Z", "sent plus the recipient's retention_s, UTC"
    soc = PublishedAlert.model_validate(full)
    assert (soc.site_id, soc.recipient, soc.agreement) == ("depot-7", "firm-soc", "firm-soc")  # agreement: its name
    assert soc.expires - full_alert.sent == timedelta(seconds=DEFAULT_EXPIRY_S), "else the site's message expiry"
    # Never copied from the alert: the policy alone says who a copy is for.
    for msg in d.route(full_alert):
        assert "value-of-recipient" not in msg.payload.decode() and "value-of-agreement" not in msg.payload.decode()
    assert list(narrow)[:8] == [
        "schema_version",
        "identifier",
        "sender",
        "sent",
        "expires",
        "site_id",
        "recipient",
        "agreement",
    ], "the envelope first, in schema order"


def test_a_view_without_the_per_recipient_fields_is_not_a_published_alert(full_alert: Alert) -> None:
    [msg] = dispatcher(RecipientPolicy(name="default")).route(full_alert)
    for field in ("recipient", "agreement", "expires", "site_id"):
        view = {k: v for k, v in view_of(msg).items() if k != field}
        with pytest.raises(ValidationError, match=f"{field}\n  Field required"):
            PublishedAlert.model_validate(view)
