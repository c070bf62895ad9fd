"""A site under a written agreement with break-glass terms, requests signed as a recipient signs them, a clock.

`write_site` writes a real site config (agreement, recipient with its status key) and loads it through the
real loader; `request_bytes` signs a `BreakGlassRequest` with the recipient's Ed25519 key
(`agent.delivery.jws.sign_envelope`, `typ` `edge-request+json`); `Clock` is the `now` the dispatcher and
the desk read, moved by the test instead of waiting. `make_desk` wires the site's delivery side without a
broker (outbox file, feedback intake, break-glass table and desk, a dispatcher consulting the grants) for
tests that hand the desk its messages directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.alerts.ids import Uuid7Factory
from agent.alerts.request import TYP_NOTICE, TYP_REQUEST, BreakGlassNotice, BreakGlassRequest
from agent.alerts.schema import Alert
from agent.config import SiteConfig, load_config
from agent.delivery.break_glass import BreakGlassDesk, RequestOutcome
from agent.delivery.break_glass_table import BreakGlassTable
from agent.delivery.feedback import FeedbackIntake
from agent.delivery.jws import open_envelope, sign_envelope, verify_envelope
from agent.delivery.outbox import Outbox
from agent.delivery.routing import AlertDispatcher, recipient_topics
from agent.delivery.sharing_terms import TermsTables
from agent.delivery.signing import AlertSigner, load_signing_key
from agent.delivery.sink import DeliverySink, OutboxStore
from agent.delivery.topics import requests_topic
from agent.privacy.audit import AuditLog, read_records
from agent.runtime.feedback_assembly import feedback_intake
from agent.values.alert_moment import AlertMoment
from tests.delivery.feedback_site import Incidents, recipient_key

SITE = "bg-site"
AUTO = {"allowed": True, "max_duration_s": 1800, "may_widen": ["snapshots", "exact_location"], "auto_grant": True}
LAT, LON = 51.123456, 0.654321  # six decimals, so 3 and 5 kept decimals read differently
_IDS = Uuid7Factory()


@dataclass
class Clock:
    """A settable `now` (aware UTC)."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


def write_site(
    path: Path,
    *,
    site_id: str,
    keys: Path,
    break_glass: dict[str, Any] | None,
    port: int = 1883,
    recipient: str = "police",
    **recipient_options: Any,
) -> SiteConfig:
    """A site config on disk (state beside it) with one agreement and one recipient receiving under it."""
    agreement: dict[str, Any] = {
        "id": "police-2026",
        "parties": ["Acme Security", "County Police"],
        "purpose": "respond to intrusions at the yard",
        "legal_basis": "data sharing agreement of 2026-01-05",
        "valid_from": "2026-01-01",
        "valid_until": "2030-12-31",
        "review_contact": "dpo@acme.example",
        "shares": {"snapshots": False, "max_location_decimals": 3},
    }
    if break_glass is not None:
        agreement["break_glass"] = break_glass
    doc = {
        "site": {"id": site_id, "name": "break-glass test", "location": {"lat": LAT, "lon": LON}},
        "cameras": [{"id": "gate", "source": "unused.mp4", "detect_fps": 5}],
        "mqtt": {"host": "127.0.0.1", "port": port, "connect_timeout_s": 5},
        "outbox": {"path": "outbox.sqlite"},
        "signing": {"key_file": "key.pem"},
        "policies": {
            "agreements": [agreement],
            "recipients": [
                {
                    "name": recipient,
                    "agreement": "police-2026",
                    "feedback_keys": str(keys),
                    "location_decimals": 3,
                    **recipient_options,
                }
            ],
            "pseudonym_key_file": "pseudonym.key",
            "audit_log": "audit/outgoing.jsonl",
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_config(path)


def request_bytes(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    site_id: str,
    incident_id: str,
    recipient: str = "police",
    widen: tuple[str, ...] = ("snapshots", "exact_location"),
    duration_s: int = 900,
    sent: datetime | None = None,
    typ: str = TYP_REQUEST,
    **extra: Any,
) -> bytes:
    """A signed request, as a recipient's software sends it."""
    sent = sent or datetime.now(UTC)
    body = BreakGlassRequest(
        request_id=_IDS.new(sent),
        site_id=site_id,
        recipient=recipient,
        incident_id=incident_id,
        widen=list(widen),
        duration_s=duration_s,
        justification=extra.pop("justification", "armed suspect seen at the yard gate, units en route"),
        operator=extra.pop("operator", "Sgt. Miller, RTCC"),
        sent=sent,
        **extra,
    )
    return sign_envelope(body.to_json_bytes(), key, kid, typ)


def request_id_of(payload: bytes) -> str:
    return str(json.loads(open_envelope(payload).payload)["request_id"])


@dataclass
class Desk:
    config: SiteConfig
    clock: Clock
    outbox: Outbox
    audit: AuditLog
    table: BreakGlassTable
    desk: BreakGlassDesk
    feedback: FeedbackIntake
    dispatcher: AlertDispatcher
    key: Ed25519PrivateKey
    kid: str
    incidents: Incidents

    def send(self, alert: Alert, moment: AlertMoment | None = None) -> dict[str, Any]:
        """Route one alert as the delivery sink does (route, store, audit); the police's view of it."""
        self.feedback.watch(self._route)((alert,), moment)
        assert self.feedback.wait_idle(10)
        return self.view(alert)

    def send_through_sink(self, alert: Alert, moment: AlertMoment | None = None) -> dict[str, Any]:
        store = OutboxStore(self.outbox, default_expiry_s=3600)
        with DeliverySink(self.dispatcher, store, audit=self.audit) as sink:
            self.feedback.watch(sink.submit)((alert,), moment)
        assert self.feedback.wait_idle(10)
        return self.view(alert)

    def _route(self, alerts: tuple[Alert, ...], moment: AlertMoment | None = None) -> None:
        store = OutboxStore(self.outbox, default_expiry_s=3600)
        for alert in alerts:
            for message in self.dispatcher.dispatch(alert, moment).messages:
                assert store.store(message)
                self.audit.record(message)

    def view(self, alert: Alert) -> dict[str, Any]:
        views = [view_of(m.message.payload) for m in self.outbox.pending(limit=1000) if "/alerts/" in m.message.topic]
        return next(v for v in views if v["identifier"] == alert.identifier)

    def ask(self, payload: bytes, level: str = "police") -> RequestOutcome:
        return self.desk.handle(requests_topic("edge", SITE, level), payload)

    def request(self, incident_id: str, **options: Any) -> bytes:
        return request_bytes(self.key, self.kid, site_id=SITE, incident_id=incident_id, sent=self.clock(), **options)


def view_of(payload: bytes) -> dict[str, Any]:
    return dict(json.loads(open_envelope(payload).payload))


def records(desk: Desk, kind: str | None = None) -> list[dict[str, Any]]:
    return [r.data for r in read_records(desk.audit.path) if kind is None or r.data.get("kind") == kind]


def notices(desk: Desk) -> list[BreakGlassNotice]:
    """The notices in the outbox, each verified with the site's public key."""
    public = load_signing_key(desk.config.signing.key_file).public_key()
    found = []
    for m in desk.outbox.pending(limit=1000):
        if m.message.topic == f"edge/{SITE}/notifications":
            opened = open_envelope(m.message.payload)
            assert opened.typ == TYP_NOTICE
            found.append(BreakGlassNotice.model_validate_json(verify_envelope(opened, public)))
    return found


def make_desk(tmp_path: Path, break_glass: dict[str, Any] | None, **recipient: Any) -> Iterator[Desk]:
    key, kid, jwk = recipient_key(tmp_path, "police")
    config = write_site(tmp_path / "site.yaml", site_id=SITE, keys=jwk, break_glass=break_glass, **recipient)
    clock = Clock(datetime.now(UTC))
    with ExitStack() as stack:
        outbox = stack.enter_context(Outbox(config.outbox))
        audit = AuditLog(config.policies.audit_log)
        store = OutboxStore(outbox, default_expiry_s=3600)
        feedback = stack.enter_context(feedback_intake(config, audit=audit, store=store))
        table = stack.enter_context(BreakGlassTable(config.outbox.path))
        desk = BreakGlassDesk.from_config(config, table=table, audit=audit, put=outbox.put, now=clock)
        signer = AlertSigner.from_file(config.signing.key_file)
        dispatcher = AlertDispatcher(
            config.policies,
            recipient_topics("edge", SITE),
            signer.sign,
            default_expiry_s=3600,
            site_id=SITE,
            tables=TermsTables(grants=table),
            now=clock,
        )
        yield Desk(config, clock, outbox, audit, table, desk, feedback, dispatcher, key, kid, Incidents(config))
