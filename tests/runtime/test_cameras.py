"""Many cameras in one process: a broken camera never stops the others; one that changes resolution goes on."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.config import load_config
from agent.delivery.jws import open_envelope
from agent.runtime.service import AgentService
from agent.runtime.stats import SiteStats
from tests.runtime.agent_process import AgentProcess, Subscriber, camera, write_site_config
from tests.sources.mjpeg_server import MjpegServer, free_port, load_jpegs


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


@pytest.mark.broker
def test_a_camera_that_changes_resolution_keeps_alerting(mosquitto, vtest_avi: Path, tmp_path: Path) -> None:
    site = "resized-site"
    server = MjpegServer(load_jpegs(vtest_avi, 100, (384, 288)), free_port(), fps=10).start()
    config = write_site_config(
        tmp_path / "site.yaml", port=mosquitto.port, site_id=site, cameras=[camera("porch", server.url)]
    )
    sub = Subscriber(mosquitto.port, f"edge/{site}/#")
    alerts = rf"^edge/{site}/[^/]+/alerts/"
    try:
        with AgentProcess(config) as agent:
            agent.wait_for_log(r"event=agent_started", 60)
            sub.wait_for(alerts, 90)
            switched = datetime.now(UTC)
            # The installer picks the camera's VGA profile; its MJPEG stream goes on at the new size.
            server.serve(load_jpegs(vtest_avi, 100, (640, 480)))
            agent.wait_for_log(r"event=camera_resolution_changed camera=porch old_wh=384x288 new_wh=640x480", 30)
            deadline = time.monotonic() + 60
            seen_after: list[dict[str, object]] = []
            while not seen_after and time.monotonic() < deadline:
                time.sleep(0.2)
                details = [json.loads(open_envelope(p).payload)["detection"] for _t, p, _r in sub.matching(alerts)]
                seen_after = [
                    d for d in details if d["phase"] != "end" and datetime.fromisoformat(d["last_seen"]) > switched
                ]
            stats = json.loads(sub.matching(rf"^edge/{site}/stats$")[-1][1])["cameras"][0]
    finally:
        sub.close()
        server.stop()
    # The zone is in normalized units, so it covers the larger frame as it covered the smaller one.
    assert seen_after, "no alert counted an object on the new-size frames"
    assert stats["state"] == "running" and stats["frames_damaged"] == 0
