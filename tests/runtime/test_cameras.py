"""Many cameras in one process: a broken camera never stops the others."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.config import load_config
from agent.runtime.service import AgentService
from agent.runtime.stats import SiteStats
from tests.runtime.agent_process import camera, write_site_config


def wait_for_stats(service: AgentService, done, timeout_s: float = 40) -> SiteStats:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = service.latest_stats
        if stats is not None and done(stats):
            return stats
        time.sleep(0.2)
    raise AssertionError(f"condition not reached; last stats: {service.latest_stats}")


@pytest.mark.broker
def test_a_broken_camera_does_not_stop_the_good_one(mosquitto, vtest_avi: Path, tmp_path: Path) -> None:
    path = write_site_config(
        tmp_path / "site.yaml",
        port=mosquitto.port,
        site_id="two-cams",
        cameras=[
            camera("good", str(vtest_avi)),
            camera("broken", str(tmp_path / "no-such-video.avi"), loop=False),
        ],
    )
    service = AgentService(load_config(path), config_path=path)
    runner = threading.Thread(target=service.run, name="test-agent")
    runner.start()
    try:
        stats = wait_for_stats(
            service,
            lambda s: (
                {c.camera_id: c for c in s.cameras}["good"].frames_processed >= 10
                and {c.camera_id: c for c in s.cameras}["broken"].restarts >= 2
            ),
        )
    finally:
        service.stop()
        runner.join(30)
    assert not runner.is_alive()
    by_id = {c.camera_id: c for c in stats.cameras}
    good, broken = by_id["good"], by_id["broken"]
    assert good.state == "running" and good.frames_detected > 0
    assert broken.state == "failed" and "no-such-video.avi" in broken.last_error
    assert broken.frames_processed == 0
    assert stats.delivery.failures == 0, "the broken camera costs delivery nothing"
    # The failed camera is retried, not abandoned, and the agent still counts as healthy to systemd.
    assert broken.restarts >= 2
