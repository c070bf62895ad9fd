"""What a site really sends (builder, sharing policy, signer) is what the receiving side accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.rejections import Rejected
from agent.agency.trust_registry import TrustRegistry
from agent.alerts.builder import AlertBuilder
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.cli.subscribe_command import render_cap
from agent.config import PoliciesConfig, RecipientPolicy, SiteInfo
from agent.delivery.signing import AlertSigner
from agent.privacy.policy import SharingPolicy
from agent.privacy.pseudonyms import PseudonymKey
from tests.agency.v2_alerts import RECIPIENT, Site, intrusion_event


def _site_alert(site_id: str) -> Alert:
    now = datetime.now(UTC)
    site = SiteInfo(id=site_id, name="Depot North", location={"lat": 51.5, "lon": -0.12})  # type: ignore[arg-type]
    event = intrusion_event(1, now, count=2, dwell_s=3.5)
    return AlertBuilder(site, "north-gate", status="Actual", ids=Uuid7Factory()).build(event)


@pytest.fixture()
def policy() -> SharingPolicy:
    recipients = [
        RecipientPolicy(name=RECIPIENT, agreement="rtcc-2026", retention_s=600),
        RecipientPolicy(name="counts-only", fields=["detection.count"]),
    ]
    return SharingPolicy(
        PoliciesConfig(recipients=recipients),
        site_id="depot-north",
        key=PseudonymKey.from_secret(b"k" * 32),
        default_expiry_s=3600,
    )


def test_a_sites_signed_views_are_accepted_and_rendered(
    policy: SharingPolicy, registry: TrustRegistry, north: Site
) -> None:
    alert = _site_alert("depot-north")
    signer = AlertSigner(north.key)
    full_view, narrow_view = (policy.render(alert, r) for r in policy.recipients)

    accepted = AlertVerifier(registry, RECIPIENT).check(north.topic(), signer.sign(full_view))
    assert (accepted.alert.recipient, accepted.alert.agreement) == (RECIPIENT, "rtcc-2026")
    assert timedelta(seconds=599.999) <= accepted.alert.expires - accepted.alert.sent <= timedelta(seconds=600)
    assert accepted.alert.severity == "Severe" and accepted.alert.incident_id == alert.incidents
    xml = render_cap(accepted)
    assert f"<identifier>{alert.identifier}</identifier>" in xml and "<severity>Severe</severity>" in xml

    narrow = AlertVerifier(registry, "counts-only").check(
        north.topic(recipient="counts-only"), signer.sign(narrow_view)
    )
    assert narrow.alert.severity is None and narrow.data["detection"] == {"count": 2}
    with pytest.raises(Rejected) as caught:
        render_cap(narrow)
    assert caught.value.reason == "not_renderable"
