"""v2 alerts for the receiving side's tests: sites with keys, signed views, a registry file, raw publishing.

An alert is built the way a site builds one (`AlertBuilder` over a rule
event, `sent` now), dumped to its JSON form and given the v2 top-level
fields (`schema_version: 2`, `site_id`, `expires`, `recipient`,
`agreement`), then signed as a JWS with the site's key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.config import SiteInfo
from agent.delivery.jws import TYP_ALERT, key_id_for, public_jwk, sign_envelope
from agent.delivery.topics import alert_topic
from agent.values.rule_events import RuleEvent

RECIPIENT = "police-rtcc"


@dataclass(eq=False)
class Site:
    """A site with its signing key(s): `key` signs, `keys` are all it has had."""

    site_id: str
    prefix: str = "edge"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def kid(self) -> str:
        return key_id_for(self.key.public_key())

    def topic(self, camera: str = "cam-7f3a", rule: str = "yard", recipient: str = RECIPIENT) -> str:
        return alert_topic(self.prefix, self.site_id, camera, rule, recipient)

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.key.public_key())


def intrusion_event(
    incident_key: int, when: datetime, *, severity: str = "Severe", count: int = 1, dwell_s: float = 2.0
) -> RuleEvent:
    """The start of an intrusion incident on zone `yard` at `when`, as a rule reports one."""
    return RuleEvent(
        phase="start",
        incident_key=incident_key,
        rule="yard",
        rule_kind="intrusion",
        zone="yard",
        line=None,
        class_name="person",
        count=count,
        dwell_s=dwell_s,
        confidence=0.8,
        first_seen_utc=when - timedelta(seconds=dwell_s),
        last_seen_utc=when,
        ts_utc=when,
        severity=severity,
    )


def alert_data(
    site_id: str,
    n: int = 1,
    *,
    recipient: str = RECIPIENT,
    sent: datetime | None = None,
    ttl_s: float = 3600,
    **overrides: Any,
) -> dict[str, Any]:
    """Alert number `n` of a site as the JSON data of a v2 recipient view (every field present)."""
    sent = sent or datetime.now(UTC)
    site = SiteInfo(id=site_id, name=f"Site {site_id}", location={"lat": 51.5, "lon": -0.12})  # type: ignore[arg-type]
    event = intrusion_event(n, sent)
    alert = AlertBuilder(site, "cam-7f3a", status="Actual", ids=Uuid7Factory(f"{site_id}-{n}")).build(event)
    data: dict[str, Any] = alert.model_dump(mode="json", exclude_none=True)
    data.update(
        schema_version=2,
        site_id=site_id,
        sent=sent.isoformat().replace("+00:00", "Z"),
        expires=(sent + timedelta(seconds=ttl_s)).isoformat().replace("+00:00", "Z"),
        recipient=recipient,
        agreement=f"{recipient}-agreement",
    )
    data.update(overrides)
    return data


def sign(key: Ed25519PrivateKey, payload: Mapping[str, Any] | bytes, *, typ: str = TYP_ALERT) -> bytes:
    """The JWS a site publishes for `payload` (its data, or exact bytes)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    return sign_envelope(raw, key, key_id_for(key.public_key()), typ)


def signed_alert(site: Site, n: int = 1, **kwargs: Any) -> bytes:
    return sign(site.key, alert_data(site.site_id, n, **kwargs))


def write_registry(path: Path, sites: Iterable[Site], extra: Mapping[str, str] | None = None) -> Path:
    """A registry YAML with each site's key inline; `extra[site_id]` is appended to its key entry."""
    lines = ["sites:"]
    for site in sites:
        lines += [
            f"  - site_id: {site.site_id}",
            f"    name: Site {site.site_id}",
            f"    topic_prefix: {site.prefix}",
            "    keys:",
            f"      - jwk: {json.dumps(site.jwk())}",
        ]
        if extra and site.site_id in extra:
            lines.append(extra[site.site_id])
    path.write_text("\n".join(lines) + "\n")
    return path


def publish_raw(port: int, items: Iterable[tuple[str, bytes]]) -> None:
    """Publish each (topic, payload) QoS 1 from one plain client, in order, waiting for every PUBACK."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in items:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
