"""`make demo`: a local broker, the agent over a real clip, alerts printed as they arrive.

Starts Mosquitto on a free loopback port, runs `edge-agent run` over the
clip with the demo config and receives its alerts the way a recipient does:
a trust registry naming the demo site with its public key (as a JWK), and
the receiver (`agent.agency.subscriber`), which checks each alert's
signature, site, topic, recipient, freshness and novelty. It prints one line
per alert (and per refused message), then stops what it started and prints
a summary.
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

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.broker_connection import BrokerUrl, ConnectionOptions
from agent.agency.rejections import Rejected
from agent.agency.seen_store import SeenStore
from agent.agency.subscriber import AlertReceiver, ReceiverOptions
from agent.agency.trust_registry import TrustRegistry
from agent.agency.trust_registry_file import load_registry
from agent.alerts.ids import short_id
from agent.config import SiteConfig, load_config
from agent.delivery.jws import key_id_for, public_jwk
from agent.delivery.signing import load_or_create_signing_key


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
    """One readable line for an accepted alert (a field the recipient's view lacks shows as -)."""
    d = alert.get("detection") or {}
    event = (alert.get("info") or {}).get("event", "-")
    incident = d.get("incident_id") or alert.get("incidents") or "-"
    return (
        f"ALERT {d.get('phase', '-'):<6} {event:<10} {d.get('camera_id', '-')}/{d.get('zone') or d.get('line')} "
        f"count={d.get('count', '-')} dwell={d.get('dwell_s', 0):.1f}s conf={d.get('confidence', 0):.2f} "
        f"incident={short_id(incident)} seq={d.get('sequence', '-')}  [{topic}]"
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
        received = _run_agent_and_listen(args.config, overrides, config, broker.port, Path(tmp))
    _print_summary(received)
    return 0 if received else 1


def _run_agent_and_listen(
    config_path: str, overrides: list[str], config: SiteConfig, port: int, workdir: Path
) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    registry = _demo_registry(config, workdir)
    recipient = config.policies.recipients[0].name
    prefix = f"{config.mqtt.topic_prefix}/{config.site.id}"
    # Status and stats are plain messages; alerts go through the receiver.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):  # type: ignore[no-untyped-def]
        if msg.topic.endswith("/status"):
            print(f"demo: {msg.topic} = {msg.payload.decode(errors='replace')}", flush=True)
        elif msg.topic.endswith("/stats"):
            print(f"demo: stats {_stats_line(msg.payload)}", flush=True)

    def on_reject(topic: str, why: Rejected) -> None:
        print(f"demo: REJECTED message on {topic}: {why.reason}: {why.detail}", flush=True)

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe([(f"{prefix}/status", 1), (f"{prefix}/stats", 1)])
    client.loop_start()
    options = ReceiverOptions(
        ConnectionOptions(BrokerUrl("127.0.0.1", port, tls=False)), tuple(registry.alert_filters())
    )
    with (
        SeenStore(workdir / "seen.sqlite", window_s=86400) as seen,
        AlertReceiver(options, AlertVerifier(registry, recipient, seen), on_reject=on_reject) as receiver,
    ):
        receiver.wait_subscribed(10)
        print(f"demo: receiving as {recipient!r} with the trust registry {workdir / 'registry.yaml'}", flush=True)
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
            drain_until = None  # the agent has ended: what is still on its way gets a second
            while drain_until is None or time.monotonic() < drain_until:
                if drain_until is None and agent.poll() is not None:
                    drain_until = time.monotonic() + 1.0
                item = receiver.get(0.2)
                if item is None:
                    continue
                received.append(item.accepted.data)
                print(alert_line(item.accepted.data, item.topic), flush=True)
                receiver.done(item)
        except KeyboardInterrupt:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
    client.loop_stop()
    client.disconnect()
    return received


def _demo_registry(config: SiteConfig, workdir: Path) -> TrustRegistry:
    """A trust registry file naming the demo site, its topic prefix and its public key as a JWK.

    The key is created here when the demo runs for the first time (the agent
    then loads the same file), so the registry can name it before the agent starts.
    """
    public = load_or_create_signing_key(config.signing.key_file).public_key()
    jwk = public_jwk(public, config.signing.key_id or key_id_for(public))
    path = workdir / "registry.yaml"
    path.write_text(
        "sites:\n"
        f"  - site_id: {config.site.id}\n"
        f"    name: {json.dumps(config.site.name)}\n"
        f"    topic_prefix: {config.mqtt.topic_prefix}\n"
        "    keys:\n"
        f"      - jwk: {json.dumps(jwk)}\n",
        encoding="utf-8",
    )
    return load_registry(path)


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


def _print_summary(received: list[dict[str, Any]]) -> None:
    phases = Counter((a.get("detection") or {}).get("phase") for a in received)
    incidents = {a.get("incidents") for a in received}
    print("\ndemo summary")
    print(f"  alerts received and verified : {len(received)}")
    print(f"  incidents                    : {len(incidents)}")
    for phase in ("start", "update", "end"):
        print(f"  {phase:<29}: {phases.get(phase, 0)}")


if __name__ == "__main__":
    sys.exit(main())
