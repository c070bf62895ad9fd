"""`make demo`: a local broker, the agent over a real clip, alerts printed as they arrive.

Starts Mosquitto on a free loopback port, runs `edge-agent run` over the
clip with the demo config, subscribes to the site's alert topics, checks
each message's signature with the site's public key, prints one line per
alert, then stops what it started and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt

from agent.config import load_config
from agent.delivery.local_broker import LocalMosquitto
from agent.delivery.signing import TrustStore, load_or_create_signing_key, public_key_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.demo", description=__doc__)
    parser.add_argument("--config", default="config/demo.yaml", help="demo site config")
    parser.add_argument("--clip", required=True, help="video file to play as the camera")
    args = parser.parse_args(argv)
    clip = str(Path(args.clip).resolve())
    overrides = [f"cameras.0.source={clip}", "cameras.0.loop=false"]
    config = load_config(args.config, overrides)
    key = load_or_create_signing_key(config.signing.key_file)
    trust = TrustStore.from_public_keys([key.public_key()])
    with tempfile.TemporaryDirectory(prefix="edge-agent-demo-") as tmp, LocalMosquitto(Path(tmp)) as broker:
        print(f"demo: mosquitto listening on 127.0.0.1:{broker.port}", flush=True)
        received = _run_agent_and_listen(args.config, overrides, config, broker.port, trust)
    _print_summary(received)
    return 0 if received else 1


def _run_agent_and_listen(config_path, overrides, config, port, trust):  # type: ignore[no-untyped-def]
    received: list[dict] = []
    prefix = f"{config.mqtt.topic_prefix}/{config.site.id}"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):  # type: ignore[no-untyped-def]
        if msg.topic.endswith("/status") or msg.topic.endswith("/stats"):
            print(f"demo: {msg.topic} = {msg.payload.decode(errors='replace')}", flush=True)
            return
        alert = trust.verify(msg.payload)
        received.append(alert)
        d = alert["detection"]
        print(
            f"ALERT {d['phase']:<6} {alert['info']['event']:<10} {d['camera_id']}/{d.get('zone') or d.get('line')} "
            f"count={d['count']} dwell={d['dwell_s']:.1f}s conf={d['confidence']:.2f} "
            f"incident={d['incident_id'][:8]} seq={d['sequence']}  [{msg.topic}]",
            flush=True,
        )

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(f"{prefix}/#", qos=1)
    client.loop_start()
    cmd = [sys.executable, "-m", "agent", "run", "--config", config_path, "--set", f"mqtt.port={port}"]
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


def _print_summary(received: list[dict]) -> None:
    phases = Counter(a["detection"]["phase"] for a in received)
    incidents = {a["detection"]["incident_id"] for a in received}
    print("\ndemo summary")
    print(f"  alerts received and verified : {len(received)}")
    print(f"  incidents                    : {len(incidents)}")
    for phase in ("start", "update", "end"):
        print(f"  {phase:<29}: {phases.get(phase, 0)}")


if __name__ == "__main__":
    sys.exit(main())
