"""The delivery sink: order kept, snapshots shed (never alerts), one failure contained, close drains.

Real parts throughout: alerts from the `AlertBuilder`, a `SharingPolicy` with a
pseudonym key on disk, JWS signing with an Ed25519 key, the CenterFace model for redaction, the
SQLite outbox and the audit chain. A sink that has not been started yet holds
what is submitted, which is how these tests fill its queue without racing it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.config import OutboxConfig, PoliciesConfig, RecipientPolicy, SiteInfo, SnapshotPolicy
from agent.delivery import jws
from agent.delivery.outbox import Outbox
from agent.delivery.routing import AlertDispatcher, Signer, recipient_topics
from agent.delivery.signing import AlertSigner
from agent.delivery.sink import DeliverySink, JsonlStore, OutboxStore
from agent.privacy.audit import AuditLog, read_records, verify_log
from agent.values.alert_moment import AlertMoment
from agent.values.rule_events import RuleEvent

SITE = SiteInfo.model_validate({"id": "sink-site", "name": "Sink test", "location": {"lat": 51.0, "lon": 0.0}})
T0 = datetime(2026, 1, 1, 22, 0, tzinfo=UTC)


def make_alerts(count: int, camera_id: str = "gate") -> list[Alert]:
    """`count` start alerts of distinct incidents, as a camera's builder makes them."""
    builder = AlertBuilder(SITE, camera_id, status="Actual", ids=Uuid7Factory(seed="sink-test"))
    alerts = []
    for n in range(count):
        ts = T0 + timedelta(seconds=n)
        event = RuleEvent(
            "start", n + 1, "yard", "intrusion", "yard", None, "person", 1, 1.5, 0.9, ts, ts, ts, "Severe"
        )
        alerts.append(builder.build(event))
    return alerts


@pytest.fixture()
def policies_of(tmp_path: Path) -> Callable[..., PoliciesConfig]:
    def make(*recipients: RecipientPolicy, **options: Any) -> PoliciesConfig:
        return PoliciesConfig(
            recipients=list(recipients),
            pseudonym_key_file=tmp_path / "pseudonym.key",
            audit_log=tmp_path / "audit.jsonl",
            **options,
        )

    return make


@pytest.fixture()
def signing(signer: AlertSigner) -> Signer:
    return signer.sign


def dispatcher_for(policies: PoliciesConfig, sign: Signer) -> AlertDispatcher:
    return AlertDispatcher(policies, recipient_topics("edge", SITE.id), sign, default_expiry_s=3600, site_id=SITE.id)


def view_in(payload: bytes) -> dict[str, Any]:
    """The recipient's view an envelope carries."""
    return dict(json.loads(jws.open_envelope(payload).payload))


@pytest.fixture()
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox(OutboxConfig(path=tmp_path / "outbox.sqlite")) as box:
        yield box


@pytest.fixture(scope="module")
def moment(vtest_avi: Path) -> AlertMoment:
    """The first frame of the walkway clip with one person box."""
    cap = cv2.VideoCapture(str(vtest_avi))
    ok, image = cap.read()
    cap.release()
    assert ok
    person = np.array([[300.0, 200.0, 360.0, 380.0]], np.float32)
    return AlertMoment(image, person, person)


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def stored_alerts(outbox: Outbox) -> list[dict[str, Any]]:
    """The views in the outbox, in the order they will be sent."""
    return [view_in(m.message.payload) for m in outbox.pending(limit=1000)]


def test_messages_are_stored_and_audited_in_the_order_the_alerts_came(
    policies_of: Callable[..., PoliciesConfig], signing: Signer, outbox: Outbox, tmp_path: Path
) -> None:
    policies = policies_of(RecipientPolicy(name="police"), RecipientPolicy(name="control"))
    dispatcher = dispatcher_for(policies, signing)
    alerts = make_alerts(30)
    expected = [m.message_id for a in alerts for m in dispatcher.route(a)]
    audit = AuditLog(tmp_path / "audit.jsonl")
    with DeliverySink(dispatcher, OutboxStore(outbox, default_expiry_s=3600), audit=audit) as sink:
        for i in range(0, 30, 3):
            sink.submit(tuple(alerts[i : i + 3]))
    assert [m.message.message_id for m in outbox.pending(limit=1000)] == expected
    assert [r.data["message_id"] for r in read_records(audit.path)] == expected
    assert verify_log(audit.path)[1] is None
    counts = sink.counters()
    assert (counts.alerts_submitted, counts.messages_delivered, counts.failures, counts.queue_depth) == (30, 60, 0, 0)


def test_a_full_queue_sheds_snapshots_but_delivers_every_alert(
    policies_of: Callable[..., PoliciesConfig], signing: Signer, outbox: Outbox, moment: AlertMoment
) -> None:
    pictured = RecipientPolicy(name="control", snapshots=SnapshotPolicy(enabled=True, fill_person_boxes=True))
    dispatcher = dispatcher_for(policies_of(pictured), signing)
    alerts = make_alerts(10)
    sink = DeliverySink(dispatcher, OutboxStore(outbox, default_expiry_s=None), max_snapshot_batches=3)
    for alert in alerts:  # not started yet: everything waits in the queue
        sink.submit((alert,), moment)
    assert sink.counters().snapshots_shed == 7
    sink.close()
    views = stored_alerts(outbox)
    assert [v["identifier"] for v in views] == [a.identifier for a in alerts]
    assert [v["snapshot"]["redaction"] for v in views[:3]] == ["faces-filled"] * 3
    assert all("snapshot" not in v for v in views[3:])
    counts = sink.counters()
    assert counts.messages_delivered == 10 and counts.snapshots_shed == 7 and counts.failures == 0


def test_a_full_alert_queue_holds_the_camera_back_and_says_so(
    policies_of: Callable[..., PoliciesConfig],
    signing: Signer,
    outbox: Outbox,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)  # configure_logging may have cut it
    sink = DeliverySink(
        dispatcher_for(policies_of(RecipientPolicy(name="police")), signing),
        OutboxStore(outbox, default_expiry_s=None),
        max_alerts=2,
    )
    alerts = make_alerts(3)
    sink.submit((alerts[0],))
    sink.submit((alerts[1],))
    camera = threading.Thread(target=sink.submit, args=((alerts[2],),), name="test-camera")
    with caplog.at_level(logging.WARNING, logger="agent.delivery.sink"):
        camera.start()
        wait_until(lambda: sink.counters().submits_blocked == 1)
        assert camera.is_alive(), "the third alert waits for room rather than being dropped"
        assert sink.counters().queue_depth == 2
        sink.start()
        camera.join(30)
    sink.close()
    assert not camera.is_alive()
    assert [v["identifier"] for v in stored_alerts(outbox)] == [a.identifier for a in alerts]
    assert sink.counters().submits_blocked == 1
    assert any("event=delivery_backpressure" in r.getMessage() for r in caplog.records)


def test_a_recipient_whose_signing_fails_does_not_stop_the_others(
    policies_of: Callable[..., PoliciesConfig],
    signing: Signer,
    outbox: Outbox,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def sign(view: Mapping[str, Any]) -> bytes:
        if view["recipient"] == "broken":
            raise ValueError("HSM unplugged")
        return signing(view)

    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)
    policies = policies_of(RecipientPolicy(name="police"), RecipientPolicy(name="broken"), RecipientPolicy(name="ctl"))
    with (
        caplog.at_level(logging.ERROR, logger="agent.delivery"),
        DeliverySink(dispatcher_for(policies, sign), OutboxStore(outbox, default_expiry_s=None)) as sink,
    ):
        sink.submit(tuple(make_alerts(4)))
    recipients = [v["recipient"] for v in stored_alerts(outbox)]
    assert recipients == ["police", "ctl"] * 4
    counts = sink.counters()
    assert counts.failures == 4 and counts.messages_delivered == 8
    failed = [r.getMessage() for r in caplog.records if "event=route_failed" in r.getMessage()]
    assert len(failed) == 4 and all("recipient=broken" in m and "HSM unplugged" in m for m in failed)


def test_a_missing_face_model_withholds_snapshots_and_the_alerts_still_go(
    policies_of: Callable[..., PoliciesConfig], signing: Signer, outbox: Outbox, moment: AlertMoment, tmp_path: Path
) -> None:
    policies = policies_of(
        RecipientPolicy(name="control", snapshots=SnapshotPolicy(enabled=True)),
        face_detector={"model_path": tmp_path / "no-such-centerface.onnx"},
    )
    with DeliverySink(dispatcher_for(policies, signing), OutboxStore(outbox, default_expiry_s=None)) as sink:
        for alert in make_alerts(3):
            sink.submit((alert,), moment)
    views = stored_alerts(outbox)
    assert len(views) == 3
    assert all("face detector unavailable" in v["snapshot"]["withheld"] for v in views)
    assert sink.counters().snapshots_withheld == 3


def test_an_audit_failure_is_counted_and_the_next_message_still_goes(
    policies_of: Callable[..., PoliciesConfig], signing: Signer, outbox: Outbox, tmp_path: Path
) -> None:
    (tmp_path / "audit-is-a-folder").mkdir()
    audit = AuditLog(tmp_path / "audit-is-a-folder")
    dispatcher = dispatcher_for(policies_of(RecipientPolicy(name="police")), signing)
    with DeliverySink(dispatcher, OutboxStore(outbox, default_expiry_s=None), audit=audit) as sink:
        sink.submit(tuple(make_alerts(2)))
    assert len(stored_alerts(outbox)) == 2
    counts = sink.counters()
    assert counts.messages_delivered == 2 and counts.failures == 2


def test_close_drains_the_queue_and_later_alerts_are_refused_out_loud(
    policies_of: Callable[..., PoliciesConfig],
    signing: Signer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)
    alerts = make_alerts(12)
    out_path = tmp_path / "alerts.jsonl"
    with open(out_path, "w", encoding="utf-8") as out:
        sink = DeliverySink(dispatcher_for(policies_of(RecipientPolicy(name="police")), signing), JsonlStore(out))
        for alert in alerts:
            sink.submit((alert,))
        assert sink.counters().queue_depth == 12
        sink.close()
        assert not sink.is_alive()
        with caplog.at_level(logging.ERROR, logger="agent.delivery.sink"):
            sink.submit((alerts[0],))
    lines = out_path.read_text(encoding="utf-8").splitlines()
    assert [view_in(line.encode())["identifier"] for line in lines] == [a.identifier for a in alerts]
    counts = sink.counters()
    assert counts.messages_delivered == 12 and counts.queue_depth == 0 and counts.failures == 1
    assert any("event=delivery_failed stage=submit" in r.getMessage() for r in caplog.records)


def test_flush_waits_for_what_was_submitted_and_a_new_dispatcher_applies_to_later_alerts(
    policies_of: Callable[..., PoliciesConfig], signing: Signer, outbox: Outbox
) -> None:
    first = dispatcher_for(policies_of(RecipientPolicy(name="police")), signing)
    second = dispatcher_for(policies_of(RecipientPolicy(name="police"), RecipientPolicy(name="ctl")), signing)
    alerts = make_alerts(2)
    with DeliverySink(first, OutboxStore(outbox, default_expiry_s=None)) as sink:
        sink.submit((alerts[0],))
        sink.use_dispatcher(second)
        sink.submit((alerts[1],))
        assert sink.flush(30)
        assert sink.counters().messages_delivered == 3
    recipients = [(v["identifier"], v["recipient"]) for v in stored_alerts(outbox)]
    assert recipients == [
        (alerts[0].identifier, "police"),
        (alerts[1].identifier, "police"),
        (alerts[1].identifier, "ctl"),
    ]
