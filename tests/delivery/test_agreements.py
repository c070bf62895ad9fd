"""Sharing under agreements, end to end over a real broker: an agreement out of force withholds (audited, counted);
one that asks for verification holds alerts until its verifier's signed `verified` releases them, raised to the
verdict's level with certainty Observed; a forged verdict releases nothing; `dismissed` withholds for good; a hold
survives a restart; `never_held` severities and `auto_release_after_s` go without a verdict."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.privacy.audit import read_records, verify_log
from tests.delivery.feedback_site import Incidents, Recipient, recipient_key, running_site, wait_until, write_config

pytestmark = pytest.mark.broker
TODAY = datetime.now(UTC).date()


def _agreement(agreement_id: str, **terms: Any) -> dict[str, Any]:
    return {
        "id": agreement_id,
        "parties": ["Acme Guarding Ltd", "City Police RTCC"],
        "purpose": "Dispatch to verified intrusions at the depot",
        "legal_basis": "Data sharing agreement under the city's surveillance ordinance",
        "valid_from": str(TODAY - timedelta(days=30)),
        "valid_until": str(TODAY + timedelta(days=300)),
        "review_contact": "dpo@acme.example",
        **terms,
    }


def _config(tmp_path: Path, port: int, site_id: str, police_terms: dict[str, Any]):
    keys = {name: recipient_key(tmp_path, name) for name in ("police", "soc")}
    config = write_config(
        tmp_path / "site.yaml",
        port=port,
        site_id=site_id,
        agreements=[_agreement("police-dsa", **police_terms), _agreement("soc-contract")],
        recipients=[
            {"name": "police", "agreement": "police-dsa", "feedback_keys": str(keys["police"][2])},
            {"name": "soc", "agreement": "soc-contract", "feedback_keys": str(keys["soc"][2])},
        ],
    )
    return config, keys


def _audit(config) -> list[dict[str, Any]]:
    count, issue = verify_log(config.policies.audit_log)
    assert issue is None and count > 0
    return [r.data for r in read_records(config.policies.audit_log)]


def _kinds(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind") == kind]


def test_an_agreement_out_of_force_withholds_and_audits_while_the_other_recipient_gets_the_alert(
    mosquitto, tmp_path: Path
) -> None:
    ended = {"valid_from": str(TODAY - timedelta(days=400)), "valid_until": str(TODAY - timedelta(days=1))}
    config, keys = _config(tmp_path, mosquitto.port, "dsa-site", ended)
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "dsa-site", "police", *keys["police"][:2])
        soc = Recipient(mosquitto.port, "edge", "dsa-site", "soc", *keys["soc"][:2])
        alert = Incidents(config).alert("start", 1)
        site.submit((alert,))
        wait_until(lambda: len(soc.received()) == 1, what="the alert at the control room")
        site.sink.flush(10)
        time.sleep(0.5)  # what the broker would still deliver to the police
        assert police.received() == []
        assert site.sink.counters().copies_withheld == 1
        view = soc.received()[0]
        soc_agreement = next(a for a in config.policies.agreements if a.id == "soc-contract")
        assert (view["agreement"], view["agreement_digest"]) == ("soc-contract", soc_agreement.digest)
        assert view["validation_level"] == 2 and view["info"]["certainty"] == "Likely"
    records = _audit(config)
    (withheld,) = _kinds(records, "withheld")
    assert withheld["recipient"] == "police" and withheld["reason"] == "agreement_expired"
    assert withheld["alert_id"] == alert.identifier
    sent = [r for r in records if "message_id" in r]
    assert [r["recipient"] for r in sent] == ["soc"]
    assert sent[0]["agreement_digest"] == soc_agreement.digest and sent[0]["release"] == "immediate"


def test_a_held_alert_waits_for_a_genuine_verified_and_leaves_at_its_level_with_later_alerts_following(
    mosquitto, tmp_path: Path
) -> None:
    config, keys = _config(tmp_path, mosquitto.port, "hold-site", {"release": "after_verification", "verifier": "soc"})
    incidents = Incidents(config)
    start = incidents.alert("start", 1)
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "hold-site", "police", *keys["police"][:2])
        soc = Recipient(mosquitto.port, "edge", "hold-site", "soc", *keys["soc"][:2])
        site.submit((start,))
        wait_until(lambda: len(soc.received()) == 1, what="the alert at the verifier")
        wait_until(lambda: site.holds.held_count() == 1, what="the police copy held")
        forger = Ed25519PrivateKey.generate()
        soc.send(soc.received()[0], "verified", key=forger, validation_level=4)
        wait_until(lambda: _rejected(site, "soc") >= 1, what="the forged verdict rejected")
        assert police.received() == [] and site.holds.held_count() == 1
    # A restart in between: the hold is on disk.
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "hold-site", "police", *keys["police"][:2])
        soc = Recipient(mosquitto.port, "edge", "hold-site", "soc", *keys["soc"][:2])
        assert site.holds.held_count() == 1
        about = {"identifier": start.identifier, "incidents": start.detection.incident_id}
        soc.send(about, "verified", validation_level=4)
        wait_until(lambda: len(police.received()) == 1, what="the released copy at the police")
        released = police.received()[0]
        assert released["identifier"] == start.identifier
        assert released["validation_level"] == 4 and released["info"]["certainty"] == "Observed"
        update = incidents.alert("update", 1)
        site.submit((update,))
        wait_until(lambda: len(police.received()) == 2, what="the incident's next alert, not held")
        assert police.received()[1]["validation_level"] == 4
        assert site.holds.held_count() == 0
    records = _audit(config)
    (held,) = _kinds(records, "held")
    (release,) = _kinds(records, "released")
    assert (held["recipient"], held["verifier"]) == ("police", "soc")
    assert (release["by"], release["validation_level"], release["alert_id"]) == ("verified", 4, start.identifier)
    police_sent = [r for r in records if "message_id" in r and r["recipient"] == "police"]
    assert [r["release"] for r in police_sent] == ["verified", "verified"]
    assert all(r["validation_level"] == 4 for r in police_sent)


def test_dismissed_withholds_the_incident_for_good(mosquitto, tmp_path: Path) -> None:
    config, keys = _config(tmp_path, mosquitto.port, "dis-site", {"release": "after_verification", "verifier": "soc"})
    incidents = Incidents(config)
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "dis-site", "police", *keys["police"][:2])
        soc = Recipient(mosquitto.port, "edge", "dis-site", "soc", *keys["soc"][:2])
        site.submit((incidents.alert("start", 1),))
        wait_until(lambda: len(soc.received()) == 1, what="the alert at the verifier")
        wait_until(lambda: site.holds.held_count() == 1, what="the police copy held")
        soc.send(soc.received()[0], "dismissed")
        wait_until(lambda: site.holds.held_count() == 0, what="the hold decided")
        site.submit((incidents.alert("update", 1),))
        wait_until(lambda: len(soc.received()) == 2, what="the update at the verifier")
        site.sink.flush(10)
        soc.send(soc.received()[1], "verified")  # too late: the first verdict stands
        wait_until(lambda: _accepted(site, "soc", "verified") == 1, what="the late verdict accepted")
        site.feedback.wait_idle(5)
        time.sleep(0.5)
        assert police.received() == []
    reasons = [r["reason"] for r in _kinds(_audit(config), "withheld")]
    assert reasons == ["dismissed", "dismissed"]


def test_never_held_severities_go_at_once_and_a_hold_with_a_timeout_releases_unverified(
    mosquitto, tmp_path: Path
) -> None:
    terms = {"release": "after_verification", "verifier": "soc", "never_held": ["Extreme"], "auto_release_after_s": 1}
    config, keys = _config(tmp_path, mosquitto.port, "auto-site", terms)
    incidents = Incidents(config)
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "auto-site", "police", *keys["police"][:2])
        extreme, severe = incidents.alert("start", 1, "Extreme"), incidents.alert("start", 2, "Severe")
        site.submit((extreme, severe))
        wait_until(lambda: len(police.received()) >= 1, what="the Extreme alert at once")
        assert police.received()[0]["identifier"] == extreme.identifier
        wait_until(lambda: len(police.received()) == 2, timeout_s=10, what="the held alert after its timeout")
        late = police.received()[1]
        assert late["identifier"] == severe.identifier
        assert late["validation_level"] == 2 and late["info"]["certainty"] == "Likely"
    (release,) = _kinds(_audit(config), "released")
    assert release["by"] == "auto_release"


def _rejected(site, recipient: str) -> int:
    return sum(sum(r.rejected.values()) for r in site.feedback.counters().recipients if r.recipient == recipient)


def _accepted(site, recipient: str, status: str) -> int:
    return sum(r.statuses.get(status, 0) for r in site.feedback.counters().recipients if r.recipient == recipient)
