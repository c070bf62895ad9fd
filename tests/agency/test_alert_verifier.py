"""The checks an alert passes, one message at a time (no broker): each refusal names its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.rejections import Rejected
from agent.agency.seen_store import SeenStore
from agent.agency.trust_registry import TrustRegistry
from agent.agency.trust_registry_file import load_registry
from agent.delivery.jws import TYP_STATUS, sign_envelope
from tests.agency.v2_alerts import RECIPIENT, Site, alert_data, sign, signed_alert, write_registry


def _reason(verifier: AlertVerifier, topic: str, message: bytes, now: datetime | None = None) -> str:
    with pytest.raises(Rejected) as caught:
        verifier.check(topic, message, now)
    return caught.value.reason


@pytest.fixture()
def verifier(registry: TrustRegistry) -> AlertVerifier:
    return AlertVerifier(registry, RECIPIENT)


def test_a_sites_own_alert_under_its_own_topic_is_accepted(verifier: AlertVerifier, north: Site) -> None:
    accepted = verifier.check(north.topic(), signed_alert(north))
    assert accepted.site.site_id == "depot-north" and accepted.kid == north.kid
    assert accepted.alert.severity == "Severe" and accepted.alert.event and accepted.alert.incident_id


def test_site_a_key_signing_for_site_b_is_a_forgery(verifier: AlertVerifier, north: Site, south: Site) -> None:
    forged = sign(north.key, alert_data("depot-south"))
    with pytest.raises(Rejected) as caught:
        verifier.check(south.topic(), forged)
    assert caught.value.reason == "forged"
    assert (
        "key" in caught.value.detail and "depot-north" in caught.value.detail and "depot-south" in caught.value.detail
    )


def test_the_right_key_under_another_sites_topic_is_a_forgery(
    verifier: AlertVerifier, north: Site, south: Site
) -> None:
    assert _reason(verifier, south.topic(), signed_alert(north)) == "forged"
    assert _reason(verifier, "other/depot-north/cam/alerts/yard", signed_alert(north)) == "wrong_topic"


def test_an_inner_site_id_of_another_site_is_a_forgery(verifier: AlertVerifier, north: Site) -> None:
    data = alert_data("depot-north")
    data["detection"]["site_id"] = "depot-south"
    assert _reason(verifier, north.topic(), sign(north.key, data)) == "forged"


def test_an_unregistered_key_and_a_bad_signature_are_refused(verifier: AlertVerifier, north: Site) -> None:
    stranger = Site("depot-north")  # same site id, another key
    assert _reason(verifier, north.topic(), signed_alert(stranger)) == "unknown_key"
    envelope = json.loads(signed_alert(north))
    envelope["signature"] = json.loads(signed_alert(north, 2))["signature"]
    assert _reason(verifier, north.topic(), json.dumps(envelope).encode()) == "bad_signature"


def test_key_windows_and_revocation(tmp_path: Path, north: Site) -> None:
    now = datetime.now(UTC)
    old, new, revoked = Site("depot-north"), Site("depot-north"), Site("depot-north")
    jwks = {s: json.dumps(s.jwk()) for s in (old, new, revoked)}
    registry_file = tmp_path / "rotation.yaml"
    registry_file.write_text(
        "sites:\n"
        "  - site_id: depot-north\n"
        "    keys:\n"
        f"      - jwk: {jwks[old]}\n"
        f"        not_after: {(now - timedelta(minutes=1)).isoformat()}\n"
        f"      - jwk: {jwks[new]}\n"
        f"        not_before: {(now - timedelta(hours=1)).isoformat()}\n"
        f"      - jwk: {jwks[revoked]}\n"
        f"    revoked: [{revoked.kid}]\n"
    )
    verifier = AlertVerifier(load_registry(registry_file), RECIPIENT)
    assert _reason(verifier, north.topic(), signed_alert(old)) == "key_expired"
    assert verifier.check(north.topic(), signed_alert(new)).kid == new.kid
    assert _reason(verifier, north.topic(), signed_alert(revoked)) == "key_revoked"
    # Before the new key's window opened, it verified nothing; before the old one's closed, it did.
    assert _reason(verifier, north.topic(), signed_alert(new), now - timedelta(hours=2)) == "key_not_yet_valid"
    sent_then = now - timedelta(hours=2)
    assert verifier.check(north.topic(), signed_alert(old, sent=sent_then), sent_then).kid == old.kid


def test_both_keys_of_a_rotation_verify(tmp_path: Path) -> None:
    old, new = Site("depot-east"), Site("depot-east")
    path = tmp_path / "r.yaml"
    path.write_text(
        f"sites:\n  - site_id: depot-east\n    keys:\n      - jwk: {json.dumps(old.jwk())}\n"
        f"      - jwk: {json.dumps(new.jwk())}\n"
    )
    verifier = AlertVerifier(load_registry(path), RECIPIENT)
    assert {verifier.check(old.topic(), signed_alert(s, n)).kid for n, s in enumerate((old, new))} == {old.kid, new.kid}


def test_freshness(verifier: AlertVerifier, north: Site) -> None:
    now = datetime.now(UTC)
    expired = signed_alert(north, sent=now - timedelta(minutes=10), ttl_s=60)
    stale = signed_alert(north, sent=now - timedelta(hours=25), ttl_s=7 * 86400)
    ahead = signed_alert(north, sent=now + timedelta(minutes=6))
    slightly_ahead = signed_alert(north, 2, sent=now + timedelta(minutes=4))
    assert _reason(verifier, north.topic(), expired) == "expired"
    assert _reason(verifier, north.topic(), stale) == "stale"
    assert _reason(verifier, north.topic(), ahead) == "from_future"
    assert verifier.check(north.topic(), slightly_ahead)


def test_an_alert_for_another_recipient_is_refused(verifier: AlertVerifier, north: Site) -> None:
    assert _reason(verifier, north.topic(), signed_alert(north, recipient="fire-brigade")) == "not_for_me"


def test_a_duplicate_is_refused_once_remembered(tmp_path: Path, registry: TrustRegistry, north: Site) -> None:
    with SeenStore(tmp_path / "seen.sqlite", window_s=86400) as seen:
        verifier = AlertVerifier(registry, RECIPIENT, seen)
        message = signed_alert(north)
        verifier.remember(verifier.check(north.topic(), message))
        assert _reason(verifier, north.topic(), message) == "duplicate"
        assert verifier.check(north.topic(), signed_alert(north, 2))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"protected":"' + b"A" * (3 << 20) + b'"}', "too_large"),
        (b"\xff\xfe\x00garbage", "not_json"),
        (b"not json at all", "not_json"),
        (b'{"payload":"e30","signature":"AA"}', "malformed"),
        (json.dumps({"alert": {"identifier": "x"}, "signature": {"alg": "EdDSA", "kid": "k"}}).encode(), "schema_v1"),
    ],
    ids=["deep", "huge", "non-utf8", "not-json", "not-jws", "v1-envelope"],
)
def test_hostile_envelopes_are_refused_before_any_parsing_of_their_payload(
    verifier: AlertVerifier, north: Site, message: bytes, reason: str
) -> None:
    assert _reason(verifier, north.topic(), message) == reason


def test_a_v1_envelope_is_told_v1_is_no_longer_accepted(verifier: AlertVerifier, north: Site) -> None:
    v1 = json.dumps({"alert": alert_data("depot-north"), "signature": {"alg": "EdDSA", "sig": "x"}}).encode()
    with pytest.raises(Rejected, match="schema v1 is no longer accepted"):
        verifier.check(north.topic(), v1)
    with pytest.raises(Rejected, match="schema v1 is no longer accepted"):
        verifier.check(north.topic(), sign(north.key, alert_data("depot-north", schema_version="1.0")))


@pytest.mark.parametrize(
    "change",
    [
        {"info": {"severity": 3}},
        {"identifier": 12},
        {"sent": "yesterday"},
        {"expires": 1700000000},
        {"recipient": None},
        {"colour": "red"},
        {"detection": {"count": "2"}},
        {"references": "not-a-list"},
    ],
    ids=[
        "severity-int",
        "identifier-int",
        "sent-text",
        "expires-number",
        "recipient-null",
        "unknown",
        "count-str",
        "refs",
    ],
)
def test_validly_signed_payloads_of_the_wrong_shape_are_refused(
    verifier: AlertVerifier, north: Site, change: dict[str, object]
) -> None:
    data = alert_data("depot-north")
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    assert _reason(verifier, north.topic(), sign(north.key, data)) == "bad_schema"


def test_a_validly_signed_deep_payload_is_refused(verifier: AlertVerifier, north: Site) -> None:
    deep = b'{"schema_version":2,"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert _reason(verifier, north.topic(), sign(north.key, deep)) == "too_deep"


def test_a_narrow_view_is_accepted(verifier: AlertVerifier, north: Site) -> None:
    data = alert_data("depot-north")
    del data["info"]
    data["detection"] = {"phase": "start", "count": 1}
    accepted = verifier.check(north.topic(), sign(north.key, data))
    assert accepted.alert.severity is None and accepted.alert.event is None


def test_a_status_is_not_taken_for_an_alert(verifier: AlertVerifier, north: Site) -> None:
    status = sign_envelope(json.dumps(alert_data("depot-north")).encode(), north.key, north.kid, TYP_STATUS)
    assert _reason(verifier, north.topic(), status) == "wrong_type"


def test_a_registry_key_for_one_site_only(tmp_path: Path) -> None:
    """The same key listed for two sites is refused: it would let one sign for the other."""
    shared = Ed25519PrivateKey.generate()
    a, b = Site("site-a", key=shared), Site("site-b", key=shared)
    with pytest.raises(Exception, match="already registered"):
        load_registry(write_registry(tmp_path / "r.yaml", [a, b]))
