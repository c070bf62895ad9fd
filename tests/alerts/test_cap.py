"""CAP 1.2 XML: valid against the OASIS schema, values carried over, the cap command over JWS lines."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlschema
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.alerts.builder import AlertBuilder
from agent.alerts.cap import CAP_NAMESPACE, alert_to_cap_xml, alerts_from_jsonl
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.cli import cap_command as cap_cli
from agent.config import SiteInfo
from agent.delivery.signing import AlertSigner
from agent.errors import AgentError
from agent.values.rule_events import RuleEvent

SITE = SiteInfo(id="site-1", name="Depot", location={"lat": 51.5, "lon": -0.12})  # type: ignore[arg-type]
T0 = datetime(2026, 3, 1, 23, 0, 0, 250000, tzinfo=UTC)
NS = {"cap": CAP_NAMESPACE}


def crossing_incident() -> list[Alert]:
    b = AlertBuilder(SITE, "cam-1", status="Actual", ids=Uuid7Factory("x"))

    def ev(phase: str, t: float, count: int) -> RuleEvent:
        return RuleEvent(
            phase=phase,
            incident_key=1,
            rule="gate-count",
            rule_kind="line_crossing",
            zone=None,  # type: ignore[arg-type]
            line="gate",
            class_name="person",
            count=count,
            dwell_s=0.0,
            confidence=0.81,
            first_seen_utc=T0,
            last_seen_utc=T0 + timedelta(seconds=t),
            ts_utc=T0 + timedelta(seconds=t),
            severity="Minor",
            direction="A_to_B",
        )

    return [b.build(ev("start", 0, 1)), b.build(ev("update", 3, 2)), b.build(ev("end", 9, 2))]


def recipient_copy(alert: Alert) -> Alert:
    """The alert as a recipient's copy carries it (what the sharing policy stamps)."""
    expires = alert.sent + timedelta(minutes=10)
    return alert.model_copy(update={"recipient": "police", "agreement": "dsa-2026-07", "expires": expires})


def test_rendered_cap_validates_against_the_oasis_schema(cap_xsd: Path) -> None:
    schema = xmlschema.XMLSchema(str(cap_xsd))
    for alert in crossing_incident():
        schema.validate(alert_to_cap_xml(alert).decode("utf-8"))
        schema.validate(alert_to_cap_xml(recipient_copy(alert)).decode("utf-8"))


def test_a_recipient_copy_carries_its_expiry_site_recipient_and_agreement() -> None:
    copy = recipient_copy(crossing_incident()[0])
    root = ET.fromstring(alert_to_cap_xml(copy))
    assert root.findtext("cap:info/cap:expires", namespaces=NS) == "2026-03-01T23:10:00+00:00"
    params = {
        p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
        for p in root.findall("cap:info/cap:parameter", NS)
    }
    assert (params["schemaVersion"], params["siteId"]) == ("2", "site-1")
    assert (params["recipient"], params["agreement"]) == ("police", "dsa-2026-07")
    assert root.find("cap:info/cap:expires", NS) is not None
    assert ET.fromstring(alert_to_cap_xml(crossing_incident()[0])).find("cap:info/cap:expires", NS) is None


def test_cap_carries_the_alert_fields() -> None:
    start, update, end = crossing_incident()
    root = ET.fromstring(alert_to_cap_xml(update))
    assert root.tag == f"{{{CAP_NAMESPACE}}}alert"
    text = {e.tag.split("}")[1]: e.text for e in root}
    assert text["identifier"] == update.identifier and text["msgType"] == "Update"
    assert text["sent"] == "2026-03-01T23:00:03+00:00"  # whole seconds, numeric offset
    assert (text["status"], text["scope"]) == ("Actual", "Restricted")
    assert text["references"] == f"edge-agent@site-1,{start.identifier},2026-03-01T23:00:00+00:00"
    assert text["incidents"] == start.detection.incident_id
    params = {
        p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
        for p in root.findall("cap:info/cap:parameter", NS)
    }
    assert params["count"] == "2" and params["direction"] == "A_to_B" and params["line"] == "gate"
    assert params["sequence"] == "2" and params["firstSeen"] == "2026-03-01T23:00:00+00:00"
    assert "recipient" not in params, "an alert before any policy is nobody's copy"
    assert root.findtext("cap:info/cap:area/cap:circle", namespaces=NS) == "51.50000,-0.12000 0.1"
    assert root.findtext("cap:info/cap:event", namespaces=NS) == "Line crossing"
    end_root = ET.fromstring(alert_to_cap_xml(end))
    assert end_root.findtext("cap:info/cap:responseType", namespaces=NS) == "AllClear"


def test_cap_command_reads_alerts_and_envelopes(
    tmp_path: Path, cap_xsd: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    alerts = crossing_incident()
    lines = [
        alerts[0].to_json_bytes().decode(),
        json.dumps({"alert": json.loads(alerts[1].to_json_bytes()), "signature": {"kid": "k"}}),
        json.dumps({"payload": base64.b64encode(alerts[2].to_json_bytes()).decode(), "sig": "x"}),
    ]
    src = tmp_path / "alerts.jsonl"
    src.write_text("\n".join(lines) + "\n\n")
    assert [a.identifier for a in alerts_from_jsonl(src)] == [a.identifier for a in alerts]
    assert cap_cli.run(Namespace(input=src, out=str(tmp_path / "cap"))) == 0
    written = sorted((tmp_path / "cap").glob("*.xml"))
    assert [p.stem for p in written] == sorted(a.identifier for a in alerts)
    schema = xmlschema.XMLSchema(str(cap_xsd))
    for path in written:
        schema.validate(str(path))
    assert cap_cli.run(Namespace(input=src, out="-")) == 0
    assert capsysbinary.readouterr().out.count(b"<alert xmlns=") == 3


def test_a_line_without_an_alert_is_reported_with_its_number(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(crossing_incident()[0].to_json_bytes().decode() + '\n{"hello": 1}\n')
    with pytest.raises(AgentError, match=r"bad.jsonl:2: not an alert"):
        list(alerts_from_jsonl(src))


def test_cap_command_renders_the_jws_lines_a_replay_writes(tmp_path: Path, cap_xsd: Path) -> None:
    signer = AlertSigner(Ed25519PrivateKey.generate())
    copies = [recipient_copy(a) for a in crossing_incident()]
    src = tmp_path / "replay.jsonl"
    src.write_bytes(b"".join(signer.sign(json.loads(c.to_json_bytes())) + b"\n" for c in copies))
    assert [a.identifier for a in alerts_from_jsonl(src)] == [c.identifier for c in copies]
    assert cap_cli.run(Namespace(input=src, out=str(tmp_path / "cap"))) == 0
    schema = xmlschema.XMLSchema(str(cap_xsd))
    for copy in copies:
        root = ET.fromstring((tmp_path / "cap" / f"{copy.identifier}.xml").read_bytes())
        schema.validate(root)
        assert root.findtext("cap:info/cap:expires", namespaces=NS) is not None


def test_a_schema_v1_line_is_refused_with_its_number(tmp_path: Path) -> None:
    v1 = {**json.loads(crossing_incident()[0].to_json_bytes()), "schema_version": "1.0"}
    src = tmp_path / "old.jsonl"
    src.write_text(json.dumps({"alert": v1, "signature": {"alg": "EdDSA", "kid": "k", "sig": "x"}}) + "\n")
    with pytest.raises(
        AgentError, match=r"old.jsonl:1: not an alert: schema_version: .*schema v1 is no longer accepted"
    ):
        list(alerts_from_jsonl(src))
