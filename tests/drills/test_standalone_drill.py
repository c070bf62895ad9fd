"""A drill over a real clip, sent with no agent running (`--standalone`), through a real Mosquitto:
every message is CAP `Exercise` in its signed payload and in its CAP XML (valid against the OASIS
schema), each sent record carries the drill id between `drill_started` and `drill_finished`, the
recipient's signed statuses come back and are audited, and the scorecard shows their times and the
alerts nobody answered; an edited audit log gets no scorecard."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import xmlschema
import yaml

from agent.alerts.cap import alert_from_json_line, alert_to_cap_xml
from agent.config import load_config
from agent.delivery.jws import open_envelope
from agent.drills.drill_standalone import run_standalone
from tests.brokers import MosquittoBroker
from tests.delivery.feedback_site import Recipient, recipient_key, wait_until
from tests.runtime.agent_process import camera, edge_agent, write_site_config

SITE = "drill-site"
pytestmark = pytest.mark.broker


@pytest.fixture()
def tud_clip(assets_dir: Path) -> Path:
    return assets_dir / "videos" / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4"


def _drill_config(tmp_path: Path, port: int, clip: Path, jwk: Path) -> Path:
    path = write_site_config(tmp_path / "site.yaml", port=port, site_id=SITE, cameras=[camera("door", "unused.mp4")])
    doc = yaml.safe_load(path.read_text())
    doc["policies"] = {
        "recipients": [{"name": "police", "feedback_keys": jwk.name, "fields": ["*"]}, {"name": "firm"}],
        "pseudonym_key_file": "pseudonym.key",
        "audit_log": "audit.jsonl",
    }
    doc["drills"] = {
        "scenarios": [{"name": "door-night", "camera": "door", "clip": str(clip), "recipients": ["police"]}]
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_standalone_drill_is_exercise_end_to_end_and_scored(tmp_path: Path, tud_clip: Path, cap_xsd: Path) -> None:
    key, kid, jwk = recipient_key(tmp_path, "police")
    with MosquittoBroker(tmp_path / "broker") as broker:
        config = load_config(_drill_config(tmp_path, broker.port, tud_clip, jwk))
        scenario = config.drills.scenario("door-night")
        assert scenario is not None
        police = Recipient(broker.port, "edge", SITE, "police", key, kid)
        raw: list[bytes] = []
        police.client.on_message = lambda _c, _u, m: (raw.append(m.payload), Recipient._on_message(police, _c, _u, m))
        result: dict[str, object] = {}
        runner = threading.Thread(
            target=lambda: result.update(outcome=run_standalone(config, scenario, "door-night-1", wait_s=6.0)[0])
        )
        runner.start()
        try:
            wait_until(lambda: police.received(), 60, "a drill alert at the police")
            first = police.received()[0]
            police.send(first, "received")
            police.send(first, "acknowledged", operator="Sgt Dunn")
            runner.join(120)
        finally:
            police.close()
    outcome = result["outcome"]
    assert outcome.state == "finished" and outcome.alerts >= 2, outcome  # type: ignore[attr-defined]

    views = [json.loads(open_envelope(p).payload) for p in raw]
    assert len(views) >= 2 and {v["status"] for v in views} == {"Exercise"}
    schema = xmlschema.XMLSchema(str(cap_xsd))
    for payload in raw:
        xml = alert_to_cap_xml(alert_from_json_line(json.dumps({"jws": open_envelope(payload).payload.decode()})))
        schema.validate(xml)
        assert b"<status>Exercise</status>" in xml

    audit = tmp_path / "audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    kinds = [r.get("kind") for r in records]
    start, end = kinds.index("drill_started"), kinds.index("drill_finished")
    sent = [r for r in records if "message_id" in r]
    assert sent and all(r["drill"] == "door-night-1" and r["cap_status"] == "Exercise" for r in sent)
    assert {r["recipient"] for r in sent} == {"police"}  # the firm takes no part in this drill
    assert all(start < records.index(r) < end for r in sent)
    assert records[end]["alerts"] == outcome.alerts and records[end]["messages"] == len(sent)  # type: ignore[attr-defined]
    assert [r["status"] for r in records if r.get("kind") == "status"] == ["received", "acknowledged"]

    shown = edge_agent("drill", "report", "--audit", str(audit))
    assert shown.returncode == 0, shown.stderr
    assert "drill door-night-1" in shown.stdout and "police" in shown.stdout
    card = json.loads(edge_agent("drill", "report", "--audit", str(audit), "--json").stdout)["drills"][0]
    police_card = card["recipients"][0]
    assert police_card["alerts"] == len({r["alert_id"] for r in sent})
    assert police_card["statuses"]["received"]["count"] == 1 and police_card["statuses"]["acknowledged"]["count"] == 1
    assert police_card["statuses"]["received"]["median_s"] > 0
    assert first["identifier"] not in police_card["missed"]
    assert len(police_card["missed"]) == police_card["alerts"] - 1
    print(f"publish -> received {police_card['statuses']['received']['median_s']} s at the police (loopback)")

    lines = audit.read_text().splitlines()
    lines[1] = lines[1].replace('"police"', '"nobody"', 1)
    audit.write_text("\n".join(lines) + "\n")
    refused = edge_agent("drill", "report", "--audit", str(audit))
    assert refused.returncode == 1 and "does not verify" in refused.stderr and refused.stdout == ""
