"""`edge-agent status` says `degraded`, and why, while part of the site is not working.

A camera that cannot be reached, or a broker that is down, is not something a
restart fixes, so systemd's watchdog keeps being pinged; but the site team must
not read `healthy` while a camera is blind.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.runtime.agent_process import AgentProcess, camera, edge_agent, write_site_config


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connections to it are refused


@pytest.mark.broker
def test_status_is_degraded_while_a_camera_is_unreachable(mosquitto, vtest_avi: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_refused_port()}/video.mjpg"
    path = write_site_config(
        tmp_path / "site.yaml",
        port=mosquitto.port,
        site_id="half-blind",
        cameras=[camera("good", str(vtest_avi)), camera("gate", url)],
    )
    with AgentProcess(path) as agent:
        agent.wait_for_log(r"event=camera_unavailable camera=gate", 60)
        agent.wait_for_log(r"event=first_frame camera=good", 60)
        result = edge_agent("status", "--config", str(path))
        for _ in range(30):  # the state file is rewritten every 0.5 s
            if "camera gate unavailable" in result.stdout:
                break
            time.sleep(0.5)
            result = edge_agent("status", "--config", str(path))
    assert result.returncode == 150, result.stdout + result.stderr
    assert "agent: degraded" in result.stdout
    assert "camera gate unavailable" in result.stdout
