"""A site publishing through a broker that goes away mid-run, to an ingest service, for the failover tests.

`run_through_failover` gives a real `MqttPublisher` (configured with every
broker) an outbox it fills with signed alerts while it runs, stops the
broker it is connected to once part of them are stored, keeps filling, and
waits until the ingest service has stored them all. The site reads its
feedback topic through the publisher's connection, so what it hears back
after the failover shows its subscription was made again on the new broker.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from agent.agency.ingest import IngestService
from agent.agency.store.tables import alerts
from agent.config import MqttConfig, OutboxConfig
from agent.delivery.jws import open_envelope
from agent.delivery.messages import OutboundMessage, message_id_for
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.subscriptions import Subscription
from agent.delivery.topics import feedback_filter
from tests.agency.v2_alerts import Site, signed_alert

PACE_S = 0.02  # between two alerts: a steady stream, so some are in flight when the broker goes


@dataclass(frozen=True, slots=True)
class FailoverRun:
    """What came of it.

    Attributes:
        sent_ids: the alert ids the site sent.
        stored_ids: the alert id of every row in the store (a list: a copy would show twice).
        put_after_stop: alerts that entered the outbox after the broker was stopped.
        received_after_stop: `received` statuses the site heard for those.
        outbox_empty: every message was acknowledged by a broker.
    """

    sent_ids: list[str]
    stored_ids: list[str]
    put_after_stop: int
    received_after_stop: int
    outbox_empty: bool


def _stored_ids(service: IngestService) -> list[str]:
    with service.engine.connect() as c:
        return [str(r) for r in c.execute(select(alerts.c.alert_id)).scalars()]


def _message(payload: bytes, topic: str) -> OutboundMessage:
    return OutboundMessage(message_id_for(payload), topic, payload, 2, None, datetime.now(UTC))


def run_through_failover(
    tmp_path: Path,
    site: Site,
    mqtt: MqttConfig,
    service: IngestService,
    stop_broker: Callable[[], None],
    *,
    count: int = 60,
    timeout_s: float = 90.0,
) -> FailoverRun:
    """Send `count` alerts; call `stop_broker` once a third of them are stored (see the module docstring)."""
    payloads = [signed_alert(site, n) for n in range(1, count + 1)]
    sent_ids = [open_envelope_id(p) for p in payloads]
    heard: list[bytes] = []
    feedback = Subscription(feedback_filter(site.prefix, site.site_id), 1, lambda t, p: heard.append(p))
    stopped = threading.Event()
    put_after_stop = 0
    with (
        Outbox(OutboxConfig(path=tmp_path / "outbox.sqlite")) as box,
        MqttPublisher(mqtt, site.site_id, box, subscriptions=[feedback]) as publisher,
    ):
        publisher.wait_connected(30)
        for n, payload in enumerate(payloads):
            if n == count // 3:
                _wait(lambda: len(_stored_ids(service)) >= count // 4, timeout_s, "the first alerts to be stored")
                stop_broker()
                stopped.set()
            put_after_stop += stopped.is_set()
            box.put(_message(payload, site.topic()))
            time.sleep(PACE_S)
        outbox_empty = publisher.flush(timeout_s)
        _wait(lambda: len(_stored_ids(service)) >= count, timeout_s, f"all {count} alerts to be stored")
        after_ids = set(sent_ids[count // 3 :])
        _wait(lambda: len(_received(heard) & after_ids) >= len(after_ids), timeout_s, "statuses after the failover")
        time.sleep(0.5)  # a late copy, if one were coming, is stored by now
        return FailoverRun(
            sent_ids,
            _stored_ids(service),
            put_after_stop,
            len(_received(heard) & after_ids),
            outbox_empty,
        )


def open_envelope_id(payload: bytes) -> str:
    """The alert id inside a signed alert."""
    return str(json.loads(open_envelope(payload).payload)["identifier"])


def _received(heard: list[bytes]) -> set[str]:
    ids = set()
    for payload in list(heard):
        status = json.loads(open_envelope(payload).payload)
        if status.get("status") == "received":
            ids.add(str(status["alert_id"]))
    return ids


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
