"""`make demo`: a local broker, the agent over a real clip, alerts printed as they arrive.

Starts Mosquitto on a free loopback port, runs `edge-agent run` over the
clip with the demo config, subscribes to the site's alert topics, checks
each message's signature with the site's public key, prints one line per
alert, then stops what it started and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.alerts.ids import short_id
from agent.config import SiteConfig, load_config
from agent.delivery.signing import (
    SignatureInvalid,
    TrustStore,
    key_id_for,
    load_signing_key,
    verify_envelope,
)


class DemoBroker:
    """A throwaway Mosquitto on a free loopback port, anonymous, no persistence."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._conf = workdir / "mosquitto.conf"
        self._conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DemoBroker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._proc = subprocess.Popen([binary, "-c", str(self._conf)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self._proc.kill()
        raise SystemExit(f"demo: mosquitto did not start on port {self.port}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


def alert_line(alert: dict[str, Any], topic: str) -> str:
    """One readable line for a verified alert."""
    d = alert["detection"]
    return (
        f"ALERT {d['phase']:<6} {alert['info']['event']:<10} {d['camera_id']}/{d.get('zone') or d.get('line')} "
        f"count={d['count']} dwell={d['dwell_s']:.1f}s conf={d['confidence']:.2f} "
        f"incident={short_id(d['incident_id'])} seq={d['sequence']}  [{topic}]"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.cli.demo", description=__doc__)
    parser.add_argument("--config", default="config/demo.yaml", help="demo site config")
    parser.add_argument("--clip", required=True, help="video file to play as the camera")
    args = parser.parse_args(argv)
    clip = str(Path(args.clip).resolve())
    overrides = [f"cameras.0.source={clip}", "cameras.0.loop=false"]
    config = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory(prefix="edge-agent-demo-") as tmp, DemoBroker(Path(tmp)) as broker:
        print(f"demo: mosquitto listening on 127.0.0.1:{broker.port}", flush=True)
        received = _run_agent_and_listen(args.config, overrides, config, broker.port)
    _print_summary(received)
    return 0 if received else 1


def _run_agent_and_listen(
    config_path: str, overrides: list[str], config: SiteConfig, port: int
) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    trust: list[TrustStore] = []
    prefix = f"{config.mqtt.topic_prefix}/{config.site.id}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):  # type: ignore[no-untyped-def]
        if msg.topic.endswith("/status"):
            print(f"demo: {msg.topic} = {msg.payload.decode(errors='replace')}", flush=True)
            return
        if msg.topic.endswith("/stats"):
            print(f"demo: stats {_stats_line(msg.payload)}", flush=True)
            return
        try:
            alert = verify_envelope(msg.payload, trust[0] if trust else _site_trust(config, trust)).alert
        except SignatureInvalid as err:
            print(f"demo: REJECTED message on {msg.topic}: {err}", flush=True)
            return
        received.append(alert)
        print(alert_line(alert, msg.topic), flush=True)

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(f"{prefix}/#", qos=1)
    client.loop_start()
    # The agent's own log lines go to stderr at warning level so the alerts stand out.
    cmd = [
        sys.executable,
        "-m",
        "agent",
        "--log-level",
        "warning",
        "run",
        "--config",
        config_path,
        "--set",
        f"mqtt.port={port}",
    ]
    for o in overrides:
        cmd += ["--set", o]
    print("demo: " + " ".join(cmd[1:]), flush=True)
    agent = subprocess.Popen(cmd)
    try:
        agent.wait()
    except KeyboardInterrupt:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    time.sleep(1.0)
    client.loop_stop()
    client.disconnect()
    return received


def _stats_line(payload: bytes) -> str:
    """One line from the agent's periodic stats message."""
    try:
        stats = json.loads(payload)
        cams = ", ".join(
            f"{c['camera_id']} {c['achieved_fps']:.1f}/{c['target_fps']:g} fps, inference {c['inference_ms']:.0f} ms"
            for c in stats["cameras"]
        )
        return f"{cams}; outbox depth {stats['outbox_depth']}, delivered {stats['outbox_delivered']}"
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace")


def _site_trust(config: SiteConfig, cache: list[TrustStore]) -> TrustStore:
    """Trust the site's own public key (the agent creates the key file at its start)."""
    public = load_signing_key(config.signing.key_file).public_key()
    cache.append(TrustStore({config.signing.key_id or key_id_for(public): public}))
    return cache[0]


def _print_summary(received: list[dict[str, Any]]) -> None:
    phases = Counter(a["detection"]["phase"] for a in received)
    incidents = {a["detection"]["incident_id"] for a in received}
    print("\ndemo summary")
    print(f"  alerts received and verified : {len(received)}")
    print(f"  incidents                    : {len(incidents)}")
    for phase in ("start", "update", "end"):
        print(f"  {phase:<29}: {phases.get(phase, 0)}")


if __name__ == "__main__":
    sys.exit(main())
