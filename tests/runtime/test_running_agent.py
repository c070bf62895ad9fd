"""One agent process, observed as an operator would: stats topic, `status`, metrics, systemd
notifications, then SIGTERM (these tests run in file order; the last one stops the agent)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import OutboxConfig
from agent.delivery.jws import open_envelope
from agent.delivery.outbox import Outbox
from tests.brokers import free_port
from tests.ops.prometheus_files import PROMETHEUS_OWN, dashboard_queries, metric_names, promtool, rule_queries
from tests.runtime.agent_process import AgentProcess, Subscriber, camera, edge_agent, write_site_config

SITE = "ops-site"
pytestmark = pytest.mark.broker


class Running:
    def __init__(
        self, agent: AgentProcess, sub: Subscriber, metrics_port: int, notify: socket.socket, config: Path
    ) -> None:
        self.agent, self.sub, self.metrics_port, self.notify, self.config = agent, sub, metrics_port, notify, config


@pytest.fixture(scope="module")
def running(mosquitto, vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("running-agent")
    metrics_port = free_port()
    config = write_site_config(
        tmp / "site.yaml",
        port=mosquitto.port,
        site_id=SITE,
        cameras=[camera("door", str(vtest_avi)), camera("yard", str(vtest_avi))],
        runtime={"metrics": {"enabled": True, "port": metrics_port}},
    )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / "notify.sock"))
    notify.settimeout(0.2)
    os.environ.update(NOTIFY_SOCKET=str(tmp / "notify.sock"), WATCHDOG_USEC="4000000")
    sub = Subscriber(mosquitto.port, f"edge/{SITE}/#")
    try:
        with AgentProcess(config) as agent:
            os.environ.pop("NOTIFY_SOCKET"), os.environ.pop("WATCHDOG_USEC")
            agent.wait_for_log(r"event=agent_started", 60)
            yield Running(agent, sub, metrics_port, notify, config)
    finally:
        os.environ.pop("NOTIFY_SOCKET", None), os.environ.pop("WATCHDOG_USEC", None)
        sub.close()
        notify.close()


def test_stats_are_published_with_every_field(running: Running) -> None:
    _topic, payload, retained = running.sub.wait_for(rf"^edge/{SITE}/stats$", 30, count=3)[-1]
    assert not retained
    stats = json.loads(payload)
    assert stats["site_id"] == SITE and stats["broker_state"] == "connected"
    assert {"outbox_depth", "process", "rate_scale", "uptime_s"} <= stats.keys()
    assert stats["process"]["rss_bytes"] > 50 * 2**20 and 0 <= stats["process"]["cpu_fraction"] <= 1
    delivery = stats["delivery"]
    assert delivery["failures"] == 0 and delivery["snapshots_shed"] == 0
    assert delivery["messages_delivered"] + delivery["messages_refused"] <= delivery["alerts_submitted"]
    cams = {c["camera_id"]: c for c in stats["cameras"]}
    assert set(cams) == {"door", "yard"}
    for cam in cams.values():
        assert cam["state"] == "running" and cam["target_fps"] == 5
        assert cam["frames_in"] >= cam["frames_processed"] > 0
        assert cam["frames_detected"] + cam["frames_skipped"] == cam["frames_processed"]
        assert {"achieved_fps", "inference_ms", "motion_duty", "tracks", "frames_dropped"} <= cam.keys()
        assert {"frames_rate_skipped", "reconnects", "inference_seconds", "process_seconds"} <= cam.keys()
    assert {"rejected", "storage_errors", "delivery_seconds"} <= stats["publisher"].keys()
    assert stats["process"]["open_fds"] > 0 and stats["process"]["cpu_seconds"] > 0
    # Frame-sized buffers are returned to the system when freed (agent.runtime.heap; glibc here).
    assert "event=heap_large_blocks_mapped threshold_bytes=262144 applied=True" in running.agent.log


def test_status_reports_a_healthy_agent(running: Running) -> None:
    result = edge_agent("status", "--config", str(running.config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "agent: healthy" in result.stdout
    assert "door" in result.stdout and "yard" in result.stdout
    as_json = json.loads(edge_agent("status", "--config", str(running.config), "--json").stdout)
    assert as_json["status"] == "running" and as_json["healthy"] is True


def _scrape(running: Running) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def test_prometheus_endpoint_serves_camera_metrics(running: Running) -> None:
    text = _scrape(running)
    assert f'edge_agent_camera_achieved_fps{{camera="door",site="{SITE}"}}' in text
    assert f'edge_agent_camera_frames_total{{camera="yard",kind="detected",site="{SITE}"}}' in text
    assert f'edge_agent_camera_frames_total{{camera="yard",kind="rate_skipped",site="{SITE}"}}' in text
    assert f'edge_agent_broker_connected{{site="{SITE}"}} 1.0' in text
    assert "edge_agent_outbox_depth" in text and "edge_agent_process_rss_bytes" in text
    # Durations are histograms in seconds, per camera; no millisecond gauges are left.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("edge_agent_inference_seconds", "edge_agent_frame_process_seconds"):
        assert families[name].type == "histogram"
        counts = {s.labels["camera"]: s.value for s in families[name].samples if s.name == name + "_count"}
        assert set(counts) == {"door", "yard"} and min(counts.values()) > 0, counts
    assert families["edge_agent_alert_delivery_seconds"].type == "histogram"
    assert "_ms" not in text
    assert families["edge_agent_delivery_failures"].type == "counter"  # the sink's counters, `_total` samples


def test_exposition_passes_promtool_check_metrics(running: Running) -> None:
    run = promtool("check", "metrics", input_text=_scrape(running))
    assert run.returncode == 0 and not (run.stdout + run.stderr).strip(), run.stdout + run.stderr


def test_dashboard_and_rules_use_only_metrics_the_agent_exports(running: Running) -> None:
    exported = {s.name for f in text_string_to_metric_families(_scrape(running)) for s in f.samples}
    used = {
        (where, name)
        for where, queries in [*rule_queries().items(), *dashboard_queries().items()]
        for query in ([queries] if isinstance(queries, str) else queries)
        for name in metric_names(query)
    }
    assert len({name for _, name in used}) >= 25
    missing = sorted((where, name) for where, name in used if name not in exported | PROMETHEUS_OWN)
    assert not missing, f"used but not exported: {missing}"


def test_frames_skipped_by_design_are_told_from_frames_dropped(running: Running) -> None:
    _topic, payload, _retained = running.sub.wait_for(rf"^edge/{SITE}/stats$", 30, count=4)[-1]
    for cam in json.loads(payload)["cameras"]:
        # The clip plays at 10 fps, the camera detects at 5: about half its frames are skipped
        # by design, which is not the box being too slow.
        assert cam["frames_rate_skipped"] >= 0.3 * cam["frames_in"], cam
        accounted = cam["frames_processed"] + cam["frames_rate_skipped"] + cam["frames_dropped"]
        assert 0 <= cam["frames_in"] - accounted <= 2, cam  # the frame in work and the one waiting


def test_systemd_hears_ready_and_watchdog_pings(running: Running) -> None:
    received: list[str] = []
    for _ in range(50):
        with contextlib.suppress(TimeoutError):
            received += running.notify.recv(4096).decode().splitlines()
        if "READY=1" in received and "WATCHDOG=1" in received:
            break
    assert "READY=1" in received and "WATCHDOG=1" in received


def test_sigterm_ends_incidents_flushes_and_publishes_stopped(running: Running, tmp_path: Path) -> None:
    running.sub.wait_for(rf"^edge/{SITE}/[^/]+/alerts/", 60)
    running.agent.signal(signal.SIGTERM)
    assert running.agent.wait(30) == 0
    log = running.agent.log
    assert "event=agent_stopped flushed=True" in log
    # Open incidents were ended and their end alerts delivered before the agent left.
    phases = [
        json.loads(open_envelope(p).payload)["detection"]["phase"] for _t, p, _r in running.sub.matching(r"/alerts/")
    ]
    assert "end" in phases
    status = running.sub.wait_for(rf"^edge/{SITE}/status$", 10)
    assert status[-1][1] == b"stopped"
    with Outbox(OutboxConfig(path=running.config.parent / "outbox.sqlite")) as outbox:
        assert outbox.stats().depth == 0
    result = edge_agent("status", "--config", str(running.config))
    assert result.returncode == 3 and "not running" in result.stdout
