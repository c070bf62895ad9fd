"""Break-glass requests at the site: believed only when signed by the recipient for this site and an incident
it was sent; decided by the agreement's terms; widening that recipient's copies of that incident alone, until
the grant's end; every step in the audit chain and told to the owner in a signed notice.

Real parts: the site config through the loader, JWS signatures with Ed25519 keys, the outbox file with the
feedback ledger and break-glass table in it, the delivery sink with a real `AlertDispatcher` (CenterFace
redaction for snapshots) and the audit chain. The clock is injected: the test moves it, nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.delivery.jws import TYP_STATUS, key_id_for
from agent.privacy.audit import verify_log
from agent.values.alert_moment import AlertMoment
from tests.delivery.break_glass_site import (
    AUTO,
    LAT,
    SITE,
    Desk,
    make_desk,
    notices,
    records,
    request_bytes,
)


@pytest.fixture(scope="module")
def moment(vtest_avi: Path) -> AlertMoment:
    """The first frame of the walkway clip with one person box."""
    cap = cv2.VideoCapture(str(vtest_avi))
    ok, image = cap.read()
    cap.release()
    assert ok
    person = np.array([[300.0, 200.0, 360.0, 380.0]], np.float32)
    return AlertMoment(image, person, person)


@pytest.fixture()
def auto(tmp_path: Path) -> Iterator[Desk]:
    yield from make_desk(tmp_path, AUTO)


def test_an_auto_granted_request_widens_that_incident_alone_until_its_end(auto: Desk, moment: AlertMoment) -> None:
    first = auto.incidents.alert("start", 1)
    other = auto.incidents.alert("start", 2)
    before = auto.send(first, moment)
    auto.send(other, moment)
    assert "snapshot" not in before and before["info"]["area"][0]["circle"].startswith(f"{LAT:.3f},")
    incident = first.detection.incident_id

    granted_at = auto.clock()
    outcome = auto.ask(auto.request(incident, duration_s=600))
    assert (outcome.kind, outcome.reason) == ("granted", "")

    auto.clock.advance(30)
    widened = auto.send(auto.incidents.alert("update", 1), moment)
    assert widened["snapshot"]["redaction"] == "faces-filled"  # a grant widens what is shown, never the redaction
    assert widened["info"]["area"][0]["circle"].startswith(f"{LAT:.5f},")
    untouched = auto.send(auto.incidents.alert("update", 2), moment)
    assert "snapshot" not in untouched and untouched["info"]["area"][0]["circle"].startswith(f"{LAT:.3f},")

    auto.clock.advance(570)  # exactly at `until`: sharing has reverted, whether the desk noticed or not
    after = auto.send(auto.incidents.alert("update", 1), moment)
    assert "snapshot" not in after and after["info"]["area"][0]["circle"].startswith(f"{LAT:.3f},")
    auto.desk.tick()
    auto.clock.advance(60)
    auto.desk.tick()  # the end is recorded once

    assert verify_log(auto.audit.path)[1] is None
    kinds = [r.get("kind", "sent") for r in records(auto)]
    assert kinds == ["sent", "sent", "break_glass_request", "break_glass_granted", "sent", "sent", "sent",
                     "break_glass_ended"]  # fmt: skip
    request, granted, ended = (records(auto, k)[0] for k in ("break_glass_request", "break_glass_granted",
                                                             "break_glass_ended"))  # fmt: skip
    rid = request["request_id"]
    assert request["justification"].startswith("armed suspect") and request["operator"] == "Sgt. Miller, RTCC"
    assert (request["recipient"], request["agreement"], request["incident_id"]) == ("police", "police-2026", incident)
    assert granted["granted_by"] == "automatic" and granted["widen"] == ["exact_location", "snapshots"]
    assert (datetime.fromisoformat(granted["until"]) - granted_at).total_seconds() == 600
    assert (ended["ended"], ended["duration_s"], ended["request_id"]) == ("expired", 600.0, rid)
    sent = [r for r in records(auto) if "message_id" in r]
    assert [r.get("break_glass") for r in sent] == [None, None, rid, None, None]
    assert [r["location"] for r in sent] == ["circle:3", "circle:3", "circle:5", "circle:3", "circle:3"]
    told = notices(auto)
    assert [(n.event, n.request_id) for n in told] == [("granted", rid), ("ended", rid)]
    assert told[0].granted_by == "automatic" and told[1].ended == "expired" and told[1].duration_s == 600
    counters = auto.desk.counters()
    assert (counters.requests, counters.granted_automatic, counters.ended_expired, counters.active) == (1, 1, 1, 0)


def _forged(desk: Desk, incident: str) -> dict[str, bytes]:
    stranger = Ed25519PrivateKey.generate()
    own = {"site_id": SITE, "incident_id": incident}
    return {
        "bad_signature": request_bytes(stranger, desk.kid, **own),  # the police's kid, another key
        "unknown_key": request_bytes(stranger, key_id_for(stranger.public_key()), **own),
        "wrong_type": request_bytes(desk.key, desk.kid, typ=TYP_STATUS, **own),
        "wrong_site": request_bytes(desk.key, desk.kid, site_id="another-site", incident_id=incident),
        "recipient_mismatch": request_bytes(desk.key, desk.kid, recipient="fire", **own),
        "not_json": b"\xff\xfe not json",
    }


def test_requests_that_cannot_be_believed_are_refused_unverified_and_widen_nothing(
    auto: Desk, moment: AlertMoment
) -> None:
    alert = auto.incidents.alert("start", 1)
    auto.send(alert, moment)
    incident = alert.detection.incident_id
    for reason, payload in _forged(auto, incident).items():
        outcome = auto.ask(payload)
        assert (outcome.kind, outcome.reason) == ("rejected", reason)
    assert auto.ask(auto.request(incident), level="nobody").reason == "unknown_recipient"

    view = auto.send(auto.incidents.alert("update", 1), moment)
    assert "snapshot" not in view and auto.table.widening("police", incident, auto.clock()) is None
    refused = records(auto, "break_glass_refused")
    assert [r["reason"] for r in refused] == [*_forged(auto, incident), "unknown_recipient"]
    assert all(r["verified"] is False and r["request_id"] is None for r in refused)
    assert records(auto, "break_glass_request") == [] and records(auto, "break_glass_granted") == []
    assert verify_log(auto.audit.path)[1] is None
    assert notices(auto) == []  # nobody asked: there is nothing to tell the owner
    assert sum(auto.desk.counters().rejected.values()) == 7


def test_a_repeated_request_counts_once(auto: Desk) -> None:
    alert = auto.incidents.alert("start", 1)
    auto.send(alert)
    payload = auto.request(alert.detection.incident_id)
    assert auto.ask(payload).kind == "granted"
    assert auto.ask(payload).kind == "duplicate"
    assert len(records(auto, "break_glass_request")) == 1 and auto.desk.counters().duplicates == 1


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"duration_s": 3600, "widen": ("snapshots",)}, "beyond_limits"),  # longer than max_duration_s 1800
        ({"widen": ("exact_location",)}, "beyond_limits"),  # the agreement widens snapshots only
        ({"sent_ago_s": 7200, "widen": ("snapshots",)}, "stale"),
        ({"incident": "an-incident-never-sent", "widen": ("snapshots",)}, "unknown_incident"),
    ],
)
def test_requests_beyond_the_terms_are_refused(tmp_path: Path, options: dict[str, Any], reason: str) -> None:
    terms = {**AUTO, "may_widen": ["snapshots"]}
    for site in make_desk(tmp_path, terms):
        alert = site.incidents.alert("start", 1)
        site.send(alert)
        asked = dict(options)
        incident = asked.pop("incident", alert.detection.incident_id)
        sent = site.clock() - timedelta(seconds=asked.pop("sent_ago_s", 0))
        payload = request_bytes(site.key, site.kid, site_id=SITE, incident_id=incident, sent=sent, **asked)
        outcome = site.ask(payload)
        assert (outcome.kind, outcome.reason) == ("refused", reason)
        assert site.table.widening("police", incident, site.clock()) is None
        kinds = [r["kind"] for r in records(site) if "kind" in r]
        assert kinds == ["break_glass_request", "break_glass_refused"]
        assert records(site, "break_glass_refused")[0]["detail"]
        assert [n.event for n in notices(site)] == ["refused"] and notices(site)[0].reason == reason
        assert verify_log(site.audit.path)[1] is None


@pytest.mark.parametrize("break_glass", [None, {"allowed": False}])
def test_an_agreement_without_break_glass_refuses_every_request(tmp_path: Path, break_glass: Any) -> None:
    for site in make_desk(tmp_path, break_glass):
        alert = site.incidents.alert("start", 1)
        site.send(alert)
        outcome = site.ask(site.request(alert.detection.incident_id))
        assert (outcome.kind, outcome.reason) == ("refused", "not_allowed")
        assert site.desk.counters().refused == {"not_allowed": 1}


def test_a_request_within_limits_without_auto_grant_waits_then_lapses(tmp_path: Path) -> None:
    for site in make_desk(tmp_path, {**AUTO, "auto_grant": False}):
        alert = site.incidents.alert("start", 1)
        site.send(alert)
        outcome = site.ask(site.request(alert.detection.incident_id, duration_s=300))
        assert outcome.kind == "pending"
        assert site.table.widening("police", alert.detection.incident_id, site.clock()) is None
        site.clock.advance(299)
        site.desk.tick()
        assert site.desk.counters().pending == 1
        site.clock.advance(1)
        site.desk.tick()
        assert records(site, "break_glass_refused")[0]["reason"] == "lapsed"
        assert [n.event for n in notices(site)] == ["pending", "refused"]
        assert site.desk.counters().pending == 0


def test_a_snapshot_grant_reaches_the_copy_through_the_delivery_sink(auto: Desk, moment: AlertMoment) -> None:
    alert = auto.incidents.alert("start", 1)
    auto.send_through_sink(alert, moment)
    assert auto.ask(auto.request(alert.detection.incident_id, widen=("snapshots",))).kind == "granted"
    view = auto.send_through_sink(auto.incidents.alert("update", 1), moment)
    assert view["snapshot"]["redaction"] == "faces-filled"
