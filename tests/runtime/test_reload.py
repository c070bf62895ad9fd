"""SIGHUP reloads zones, rules and policies without dropping cameras; a bad file changes nothing."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from agent.delivery.jws import open_envelope
from tests.runtime.agent_process import AgentProcess, Subscriber, camera, edge_agent, write_site_config

SITE = "reload-site"
pytestmark = pytest.mark.broker


def test_invalid_reload_keeps_the_running_config_and_a_valid_one_applies(
    mosquitto,
    vtest_avi: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "site.yaml"
    write_site_config(path, port=mosquitto.port, site_id=SITE, cameras=[camera("gate", str(vtest_avi), rule="before")])
    sub = Subscriber(mosquitto.port, f"edge/{SITE}/+/alerts/#")  # camera levels are pseudonyms
    try:
        with AgentProcess(path) as agent:
            agent.wait_for_log(r"event=agent_started", 60)
            sub.wait_for(r"/alerts/before/", 60)

            # A rule naming a zone that does not exist: refused with the reason, cameras untouched.
            bad = camera("gate", str(vtest_avi), rule="after", zone="everywhere")
            bad["rules"][0]["zone"] = "nowhere"  # type: ignore[index]
            write_site_config(path, port=mosquitto.port, site_id=SITE, cameras=[bad])
            agent.signal(signal.SIGHUP)
            rejected = agent.wait_for_log(r"event=reload_rejected[^\n]*", 20)[0]
            assert "nowhere" in rejected and "keeping the running config" in rejected
            seen = len(sub.matching(r"/alerts/before/"))
            sub.wait_for(r"/alerts/before/", 30, count=seen + 1)  # the old rule still alerts
            assert edge_agent("status", "--config", str(path)).returncode == 0

            # A valid change of rule name and zone: applied on the running camera.
            write_site_config(
                path,
                port=mosquitto.port,
                site_id=SITE,
                cameras=[camera("gate", str(vtest_avi), rule="after", zone="lawn")],
            )
            agent.signal(signal.SIGHUP)
            agent.wait_for_log(r"event=reload_applied", 20)
            agent.wait_for_log(r"event=camera_reloaded camera=gate zones=1 rules=1", 20)
            sub.wait_for(r"/alerts/after/", 30)
            assert agent.log.count("event=camera_available camera=gate") == 1  # the source was kept open
            assert agent.proc is not None and agent.proc.poll() is None
            agent.signal(signal.SIGTERM)
            assert agent.wait(30) == 0
    finally:
        sub.close()
    # The old rule's open incident was ended when its rule went away.
    before = [p for _t, p, _r in sub.matching(r"/alerts/before/")]
    assert any(json.loads(open_envelope(p).payload)["detection"]["phase"] == "end" for p in before)


def test_reload_that_needs_a_restart_is_refused(mosquitto, vtest_avi: Path, tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    write_site_config(path, port=mosquitto.port, site_id=SITE + "-2", cameras=[camera("gate", str(vtest_avi))])
    with AgentProcess(path) as agent:
        agent.wait_for_log(r"event=agent_started", 60)
        write_site_config(
            path,
            port=mosquitto.port,
            site_id=SITE + "-2",
            cameras=[camera("gate", str(vtest_avi)), camera("extra", str(vtest_avi))],
        )
        agent.signal(signal.SIGHUP)
        rejected = agent.wait_for_log(r"event=reload_rejected[^\n]*", 20)[0]
        assert "restart" in rejected
        time.sleep(1.5)
        assert "camera=extra" not in agent.log
        agent.signal(signal.SIGTERM)
        assert agent.wait(30) == 0
