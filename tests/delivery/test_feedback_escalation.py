"""Escalation: an incident the first recipient does not acknowledge in time goes on to the next one, in that
recipient's own view and audited; one acknowledged in time, or below the severity, does not; a restart
keeps a pending escalation. Real broker, outbox, sink, dispatcher, audit and intake (`feedback_site`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.privacy.audit import read_records, verify_log
from tests.delivery.feedback_site import Incidents, Recipient, recipient_key, running_site, wait_until, write_config

pytestmark = pytest.mark.broker
AFTER_S = 2.0


def _config(tmp_path: Path, port: int, site_id: str):
    keys = {name: recipient_key(tmp_path, name) for name in ("police", "backup")}
    config = write_config(
        tmp_path / "site.yaml",
        port=port,
        site_id=site_id,
        recipients=[
            {
                "name": "police",
                "feedback_keys": str(keys["police"][2]),
                "escalate_to": "backup",
                "escalate_after_s": AFTER_S,
                "escalate_min_severity": "Severe",
            },
            # The backup would not get these alerts by its own rules: only escalations reach it.
            {"name": "backup", "feedback_keys": str(keys["backup"][2]), "min_severity": "Extreme", "fields": ["*"]},
        ],
    )
    return config, keys


def _incidents_at(recipient: Recipient) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for view in recipient.received():
        by.setdefault(view["incidents"], []).append(view)
    return by


def test_an_unacknowledged_incident_goes_to_the_next_recipient_and_an_acknowledged_one_does_not(
    mosquitto, tmp_path: Path
) -> None:
    config, keys = _config(tmp_path, mosquitto.port, "esc-site")
    with running_site(config) as site:
        police = Recipient(mosquitto.port, "edge", "esc-site", "police", *keys["police"][:2])
        backup = Recipient(mosquitto.port, "edge", "esc-site", "backup", *keys["backup"][:2])
        incidents = Incidents(config)
        acked, ignored, minor = (
            incidents.alert("start", n, s) for n, s in ((1, "Severe"), (2, "Severe"), (3, "Minor"))
        )
        started = time.monotonic()
        site.submit((acked, ignored, minor))
        update = incidents.alert("update", 2)
        site.submit((update,))
        wait_until(lambda: len(police.received()) == 4, what="four alerts at the police")
        at_police = _incidents_at(police)
        police.send(at_police[acked.detection.incident_id][0], "received")
        police.send(at_police[acked.detection.incident_id][0], "acknowledged")  # in time
        police.send(at_police[ignored.detection.incident_id][0], "received")  # received, never acknowledged

        wait_until(lambda: len(backup.received()) == 2, AFTER_S + 10, "the escalated alerts at the backup")
        waited_s = time.monotonic() - started
        end = incidents.alert("end", 2)
        site.submit((end,))  # an escalated incident's later alerts follow at once
        wait_until(lambda: len(backup.received()) == 3, what="the end at the backup too")
        at_backup = backup.received()
        backup.send(at_backup[0], "acknowledged")  # the backup's statuses about them are believed
        wait_until(
            lambda: any(
                r.statuses.get("acknowledged") for r in site.feedback.counters().recipients if r.recipient == "backup"
            ),
            what="the backup's acknowledgement",
        )
        time.sleep(AFTER_S + 0.5)  # long past the deadline of the incident acknowledged in time
        site.feedback.wait_idle(5)
        counters = {r.recipient: r for r in site.feedback.counters().recipients}
        police.close()
        backup.close()

    assert waited_s >= AFTER_S
    assert [v["identifier"] for v in at_backup] == [ignored.identifier, update.identifier, end.identifier]
    assert {v["incidents"] for v in at_backup} == {ignored.detection.incident_id}
    # The backup's own view, under its own policy.
    assert all(v["recipient"] == "backup" for v in at_backup)
    assert (
        "detection" in at_backup[0]
        and at_backup[0]["detection"]["camera_id"] != police.received()[0]["detection"]["camera_id"]
    )
    assert counters["police"].escalated == 1 and counters["police"].escalations_pending == 0
    records = [r.data for r in read_records(config.policies.audit_log)]
    escalations = [r for r in records if r.get("kind") == "escalation"]
    assert len(escalations) == 1
    esc = escalations[0]
    assert (esc["recipient"], esc["target"], esc["incident_id"], esc["outcome"]) == (
        "police",
        "backup",
        ignored.detection.incident_id,
        "sent",
    )
    assert esc["alert_ids"] == [ignored.identifier, update.identifier] and esc["waited_s"] >= AFTER_S
    sent_on = [r for r in records if r.get("kind") is None and r["recipient"] == "backup"]
    assert [r["escalated_from"] for r in sent_on] == ["police"] * 3
    assert verify_log(config.policies.audit_log)[1] is None


def test_a_pending_escalation_survives_a_restart(mosquitto, tmp_path: Path) -> None:
    config, keys = _config(tmp_path, mosquitto.port, "esc-restart")
    backup = Recipient(mosquitto.port, "edge", "esc-restart", "backup", *keys["backup"][:2])
    with running_site(config) as site:
        alert = Incidents(config).alert("start", 1)
        site.submit((alert,))
        wait_until(lambda: _pending(site, "police") == 1, what="the armed incident")
    assert backup.received() == []  # stopped before its time was up
    with running_site(config) as site:
        wait_until(lambda: len(backup.received()) == 1, AFTER_S + 10, "the escalation after the restart")
    backup.close()
    assert backup.received()[0]["identifier"] == alert.identifier


def _pending(site, name: str) -> int:
    return next(r.escalations_pending for r in site.feedback.counters().recipients if r.recipient == name)
