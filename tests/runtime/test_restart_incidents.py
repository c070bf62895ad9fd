"""An incident open when the agent was killed (`kill -9`, a power cut) gets its `end` at the next start.

The real agent runs the walkway clip with a zone over the whole frame, so an
incident opens within seconds; it is killed with SIGKILL while one is open
and started again on the same config. The subscriber must then receive, for
each incident left open, a signed `end` with the same incident id, the next
sequence number and a headline that says why it ended.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.jws import open_envelope, verify_envelope
from agent.delivery.signing import load_signing_key
from tests.runtime.agent_process import AgentProcess, Subscriber, camera, write_site_config

SITE = "restart-site"
REASON = "the agent stopped while the incident was open"
pytestmark = pytest.mark.broker


def _alerts(sub: Subscriber) -> list[dict[str, Any]]:
    return [dict(json.loads(open_envelope(payload).payload)) for _topic, payload, _r in sub.matching(r"/alerts/")]


def _open_incidents(sub: Subscriber) -> dict[str, dict[str, Any]]:
    """The last message of each incident that has no `end` yet."""
    last: dict[str, dict[str, Any]] = {}
    for alert in _alerts(sub):
        incident = alert["detection"]["incident_id"]
        if alert["detection"]["phase"] == "end":
            last.pop(incident, None)
        else:
            last[incident] = alert
    return last


def test_an_incident_open_at_kill_9_is_ended_at_the_next_start_with_the_reason(
    mosquitto, vtest_avi: Path, tmp_path: Path
) -> None:
    config = write_site_config(
        tmp_path / "site.yaml", port=mosquitto.port, site_id=SITE, cameras=[camera("walk", str(vtest_avi))]
    )
    sub = Subscriber(mosquitto.port, f"edge/{SITE}/+/alerts/#")
    try:
        with AgentProcess(config) as agent:
            deadline = time.monotonic() + 120
            while not _open_incidents(sub) and time.monotonic() < deadline:
                time.sleep(0.1)
            agent.signal(signal.SIGKILL)
            agent.wait(10)
        killed_at = datetime.now(UTC)
        left_open = _open_incidents(sub)
        assert left_open, "no incident was open when the agent was killed"
        before = len(sub.matching(r"/alerts/"))
        with AgentProcess(config) as restarted:
            deadline = time.monotonic() + 90
            ends: dict[str, dict[str, Any]] = {}
            while len(ends) < len(left_open) and time.monotonic() < deadline:
                time.sleep(0.2)
                ends = {
                    a["detection"]["incident_id"]: a
                    for a in _alerts(sub)[before:]
                    if a["detection"]["phase"] == "end" and a["detection"]["incident_id"] in left_open
                }
            restarted.signal(signal.SIGTERM)
            assert restarted.wait(60) == 0
        payloads = [p for _t, p, _r in sub.matching(r"/alerts/")[before:]]
        everything = _alerts(sub)
    finally:
        sub.close()
    assert set(ends) == set(left_open), "an incident open at the kill got no end"
    # An end made just before the kill may have waited in the outbox: it arrives now, as it was.
    ended_at_start = {i: e for i, e in ends.items() if datetime.fromisoformat(e["sent"]) > killed_at}
    assert ended_at_start, "every open incident had ended before the kill"
    for incident, end in ended_at_start.items():
        # Its last start or update may have reached the broker only after the restart (from the outbox).
        last = max(
            (a for a in everything if a["detection"]["incident_id"] == incident and a["detection"]["phase"] != "end"),
            key=lambda a: int(a["detection"]["sequence"]),
        )
        assert REASON in end["info"]["headline"], end["info"]["headline"]
        assert end["info"]["responseType"] == "AllClear" and end["msgType"] == "Update"
        assert end["detection"]["sequence"] == last["detection"]["sequence"] + 1
        assert end["identifier"] != last["identifier"]
    key = load_signing_key(tmp_path / "key.pem").public_key()
    verified = [json.loads(verify_envelope(open_envelope(p), key)) for p in payloads]
    assert {a["identifier"] for a in ended_at_start.values()} <= {a["identifier"] for a in verified}
