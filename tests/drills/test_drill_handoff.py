"""A drill handed to the running agent: `edge-agent drill` adds it, the agent sends it on its own
connection, and a recipient's status about a drill alert is accepted by the agent (it knows the
alert: its own audit log recorded it). Without an agent, the command says to use --standalone."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml

from tests.brokers import MosquittoBroker
from tests.delivery.feedback_site import Recipient, recipient_key, wait_until
from tests.runtime.agent_process import AgentProcess, camera, edge_agent, write_site_config

SITE = "drill-handoff"
pytestmark = pytest.mark.broker


def test_the_running_agent_sends_a_handed_over_drill_and_believes_its_statuses(
    tmp_path: Path, assets_dir: Path
) -> None:
    clip = assets_dir / "videos" / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4"
    key, kid, jwk = recipient_key(tmp_path, "police")
    with MosquittoBroker(tmp_path / "broker") as broker:
        # The live camera makes live (Actual) alerts from the same clip; the drill's are told apart by status.
        path = write_site_config(
            tmp_path / "site.yaml", port=broker.port, site_id=SITE, cameras=[camera("door", str(clip))]
        )
        doc = yaml.safe_load(path.read_text())
        doc["policies"] = {
            "recipients": [{"name": "police", "feedback_keys": jwk.name}],
            "pseudonym_key_file": "pseudonym.key",
            "audit_log": "audit.jsonl",
        }
        doc["drills"] = {"scenarios": [{"name": "door", "camera": "door", "clip": str(clip)}]}
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        unknown = edge_agent("drill", "--config", str(path), "--scenario", "nope")
        assert unknown.returncode == 2 and "no scenario 'nope' (scenarios: door)" in unknown.stderr
        no_agent = edge_agent("drill", "--config", str(path), "--scenario", "door")
        assert no_agent.returncode == 1 and "--standalone" in no_agent.stderr

        police = Recipient(broker.port, "edge", SITE, "police", key, kid)
        try:
            with AgentProcess(path) as agent:
                agent.wait_for_log(r"event=agent_started", 60)
                drill = edge_agent("drill", "--config", str(path), "--scenario", "door", timeout=120)
                assert drill.returncode == 0, drill.stdout + drill.stderr
                assert "the running agent is sending it" in drill.stdout and " finished:" in drill.stdout
                wait_until(lambda: any(v["status"] == "Exercise" for v in police.received()), 30, "a drill alert")
                view = next(v for v in police.received() if v["status"] == "Exercise")
                police.send(view, "received")
                agent.wait_for_log(r"event=feedback_status recipient=police status=received", 30)
                agent.signal(signal.SIGTERM)
                assert agent.wait(60) == 0
        finally:
            police.close()
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    drill_id = next(r["drill_id"] for r in records if r.get("kind") == "drill_started")
    status = next(r for r in records if r.get("kind") == "status")
    sent = next(r for r in records if r.get("alert_id") == status["alert_id"] and "message_id" in r)
    assert sent["drill"] == drill_id and sent["cap_status"] == "Exercise"
    card = json.loads(edge_agent("drill", "report", "--audit", str(tmp_path / "audit.jsonl"), "--json").stdout)
    assert card["drills"][0]["recipients"][0]["statuses"]["received"]["count"] == 1
