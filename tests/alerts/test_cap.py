"""CAP 1.2 XML: valid against the OASIS schema, values carried over, the cap command."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlschema

from agent.alerts.builder import AlertBuilder
from agent.alerts.cap import CAP_NAMESPACE, alert_to_cap_xml, alerts_from_jsonl
from agent.alerts.ids import Uuid7Factory
from agent.alerts.schema import Alert
from agent.cli import cap_command as cap_cli
from agent.config import SiteInfo
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


def test_rendered_cap_validates_against_the_oasis_schema(cap_xsd: Path) -> None:
    schema = xmlschema.XMLSchema(str(cap_xsd))
    for alert in crossing_incident():
        schema.validate(alert_to_cap_xml(alert).decode("utf-8"))


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
