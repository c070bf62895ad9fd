"""An RTSP camera in a running agent, observed as an operator would: stats, log, alerts.

One `edge-agent run` with three cameras: `street` on a real RTSP server
(gst-rtsp-server serving vtest.avi as H.264), `wrongpath` on a path that
server does not have and `refused` on a port where nothing listens. These
tests run in file order; the last one kills the server for 15 s.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.jws import open_envelope
from tests.brokers import free_port
from tests.runtime.agent_process import AgentProcess, Subscriber, camera, write_site_config
from tests.sources.rtsp_server import RtspServer, write_frames

SITE = "rtsp-site"
OUTAGE_S = 15.0
ALERTS = rf"^edge/{SITE}/[^/]+/alerts/"
pytestmark = pytest.mark.broker


class Running:
    def __init__(self, agent: AgentProcess, sub: Subscriber, server: RtspServer) -> None:
        self.agent, self.sub, self.server = agent, sub, server

    def camera_stats(self, camera_id: str) -> list[dict[str, Any]]:
        """This camera's entry of every stats message so far, oldest first."""
        found = []
        for _topic, payload, _retained in self.sub.matching(rf"^edge/{SITE}/stats$"):
            found += [c for c in json.loads(payload)["cameras"] if c["camera_id"] == camera_id]
        return found

    def wait_for_stats(self, camera_id: str, done: Any, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.camera_stats(camera_id)
            if stats and done(stats[-1]):
                return stats[-1]
            time.sleep(0.2)
        raise AssertionError(
            f"camera {camera_id}: condition not reached; last stats {self.camera_stats(camera_id)[-1:]}"
        )

    def alerts_sent_after(self, moment: datetime) -> list[dict[str, Any]]:
        # Only `street` has frames, so every alert is its own (topics carry a pseudonym of the camera id).
        alerts = [json.loads(open_envelope(p).payload) for _t, p, _r in self.sub.matching(ALERTS)]
        return [a for a in alerts if datetime.fromisoformat(a["sent"]) > moment]


@pytest.fixture(scope="module")
def running(mosquitto, vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("rtsp-agent")
    # The clip at its own size: people walk through it all the time, so alerts come quickly.
    frames = write_frames(vtest_avi, tmp / "frames", 100)
    with RtspServer(frames) as server:
        config = write_site_config(
            tmp / "site.yaml",
            port=mosquitto.port,
            site_id=SITE,
            cameras=[
                camera("street", server.url),
                camera("wrongpath", f"rtsp://127.0.0.1:{server.port}/no-such-stream"),
                camera("refused", f"rtsp://127.0.0.1:{free_port()}/stream"),
            ],
        )
        sub = Subscriber(mosquitto.port, f"edge/{SITE}/#")
        try:
            with AgentProcess(config) as agent:
                agent.wait_for_log(r"event=agent_started", 60)
                yield Running(agent, sub, server)
        finally:
            sub.close()


def test_frames_arrive_at_the_configured_rate_over_tcp(running: Running) -> None:
    # detect_fps 5 from a 10 fps stream: 25 frames through the pipeline is a few seconds' work.
    stats = running.wait_for_stats("street", lambda c: c["frames_processed"] >= 25, 90)
    assert stats["state"] == "running" and stats["target_fps"] == 5
    assert stats["frames_in"] >= stats["frames_processed"] and stats["frames_damaged"] == 0
    assert running.server.transports() and all(t.startswith("RTP/AVP/TCP") for t in running.server.transports())


def test_a_wrong_path_or_a_refused_connection_is_one_clear_line(running: Running) -> None:
    running.agent.wait_for_log(r"event=camera_unavailable camera=refused ", 30)
    running.agent.wait_for_log(r"event=camera_unavailable camera=wrongpath ", 30)
    # Let both cameras retry a few times (0.5 s, 1 s, 2 s, ...) before reading the log.
    running.wait_for_stats("wrongpath", lambda c: c["state"] == "unavailable", 30)
    time.sleep(6.0)
    log = running.agent.log
    # FFmpeg's and OpenCV's own messages, one or two per retry, stay out of the agent's output.
    noise = [line for line in log.splitlines() if re.match(r"\[(rtsp|tcp) @|\[ WARN", line)]
    assert not noise, noise[:6]
    for camera_id, reason, said in (
        ("wrongpath", "not_found", "RTSP 404"),
        ("refused", "connection_refused", "connection refused"),
    ):
        lines = [line for line in log.splitlines() if f"camera={camera_id} " in line]
        assert len(lines) == 1, f"camera {camera_id}: expected one line, got {lines}"
        assert "event=camera_unavailable" in lines[0] and f"reason={reason}" in lines[0] and said in lines[0]
        assert running.camera_stats(camera_id)[-1]["state"] == "unavailable"


def test_server_outage_is_reported_then_reconnects_and_alerts_resume(running: Running) -> None:
    running.sub.wait_for(ALERTS, 90)
    running.server.kill()
    killed = time.monotonic()
    running.agent.wait_for_log(r"event=camera_unavailable camera=street ", 20)
    running.wait_for_stats("street", lambda c: c["state"] == "unavailable", 20)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - killed)))
    running.server.start()
    restarted_utc = datetime.now(UTC)
    # Backoff: 0.25-0.5 s, then doubling up to 8-16 s after a 15 s outage; 60 s is generous.
    running.agent.wait_for_log(r"event=camera_available camera=street ", 60, count=2)
    stats = running.wait_for_stats("street", lambda c: c["state"] == "running", 30)
    processed_back = stats["frames_processed"]
    running.wait_for_stats("street", lambda c: c["frames_processed"] >= processed_back + 10, 60)
    deadline = time.monotonic() + 60
    while not running.alerts_sent_after(restarted_utc) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running.alerts_sent_after(restarted_utc), "no alert from the camera after it came back"
    outage_lines = [line for line in running.agent.log.splitlines() if "event=camera_unavailable camera=street" in line]
    assert len(outage_lines) == 1 and "reason=read_failed" in outage_lines[0] and "retry_in_s=" in outage_lines[0]
