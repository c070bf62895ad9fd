"""`make demo`: a local broker, the agent over a real clip, alerts printed as they arrive.

Starts Mosquitto on a free loopback port, runs `edge-agent run` over the
clip with the demo config and receives its alerts the way a recipient does:
a trust registry naming the demo site with its public key (as a JWK), and
the receiver (`agent.agency.subscriber`), which checks each alert's
signature, site, topic, recipient, freshness and novelty. The recipient
answers each accepted alert with a signed `received` status, as `edge-agent
subscribe --status-key` does: its key is made in the demo's working folder
and its public JWK given to the agent as the recipient's `feedback_keys`.
It prints one line per alert (and per refused message), one per status the
site verified (read from the site's audit log), then stops what it started
and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.broker_connection import BrokerUrl, ConnectionOptions
from agent.agency.rejections import Rejected
from agent.agency.seen_store import SeenStore
from agent.agency.status_sender import StatusSigner
from agent.agency.subscriber import AlertReceiver, ReceiverOptions
from agent.agency.trust_registry import TrustRegistry
from agent.agency.trust_registry_file import load_registry
from agent.alerts.ids import short_id
from agent.config import SiteConfig, load_config
from agent.delivery.jws import key_id_for, public_jwk
from agent.delivery.signing import generate_key_file, load_or_create_signing_key, write_public_key_files


class DemoBroker:
    """A throwaway Mosquitto on a free loopback port, anonymous, no persistence."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._conf = workdir / "mosquitto.conf"
        # set_tcp_nodelay as the shipped broker configs: a status would otherwise wait ~40 ms behind an ACK.
        conf = f"set_tcp_nodelay true\nlistener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        self._conf.write_text(conf)
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


@dataclass
class DemoResult:
    """What came back: the alerts the recipient accepted and the site's records of its statuses."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    statuses_rejected: list[dict[str, Any]] = field(default_factory=list)


class AuditTail:
    """The records appended to the site's audit log (JSON lines) since this was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0

    def new_records(self) -> list[dict[str, Any]]:
        """Complete lines appended since the last call (a line still being written waits)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        records = []
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def status_line(record: dict[str, Any]) -> str:
    """One readable line for a status the site accepted (its audit record)."""
    since = record.get("since_published_s")
    after = f"{since * 1000:.0f} ms after the alert's publish" if isinstance(since, int | float) else "-"
    return (
        f"STATUS {record.get('status', '-'):<8} from {record.get('recipient', '-')} "
        f"alert={short_id(record.get('alert_id') or '-')} incident={short_id(record.get('incident_id') or '-')}  "
        f"verified by the site, {after}"
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
        result = _run_agent_and_listen(args.config, overrides, config, broker.port, Path(tmp))
    _print_summary(result)
    return 0 if result.alerts else 1


def recipient_status_key(workdir: Path, recipient: str) -> tuple[StatusSigner, Path]:
    """A new status-signing key for `recipient` in `workdir` and its public JWK file beside it.

    What `edge-agent keys generate` and `keys export-public` write.
    """
    key = generate_key_file(workdir / f"{recipient}-status.pem")
    files = write_public_key_files(key, workdir, f"{recipient}-status")
    return StatusSigner(key, recipient, files.kid), files.jwk


def feedback_keys_override(config_path: str | Path, recipient: str, jwk: Path) -> str:
    """The `--set` naming `jwk` as the first recipient's `feedback_keys`.

    A config without a recipients list has the one default recipient
    (`recipient`), which an index cannot reach: the list is given whole then.
    """
    data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    if (data.get("policies") or {}).get("recipients"):
        return f"policies.recipients.0.feedback_keys={jwk}"
    return "policies.recipients=" + json.dumps([{"name": recipient, "feedback_keys": str(jwk)}], separators=(",", ":"))


def _run_agent_and_listen(
    config_path: str, overrides: list[str], config: SiteConfig, port: int, workdir: Path
) -> DemoResult:
    result = DemoResult()
    registry = _demo_registry(config, workdir)
    recipient = config.policies.recipients[0].name
    signer, jwk = recipient_status_key(workdir, recipient)
    overrides = [*overrides, feedback_keys_override(config_path, recipient, jwk)]
    prefix = f"{config.mqtt.topic_prefix}/{config.site.id}"
    audit = AuditTail(config.policies.audit_log)
    # Status and stats are plain messages; alerts go through the receiver.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):  # type: ignore[no-untyped-def]
        if msg.topic.endswith("/status"):
            print(f"demo: {msg.topic} = {msg.payload.decode(errors='replace')}", flush=True)
        elif msg.topic.endswith("/stats"):
            print(f"demo: stats {_stats_line(msg.payload)}", flush=True)

    def on_reject(topic: str, why: Rejected) -> None:
        print(f"demo: REJECTED message on {topic}: {why.reason}: {why.detail}", flush=True)

    def site_records() -> None:
        for record in audit.new_records():
            if record.get("kind") == "status":
                result.statuses.append(record)
                print(status_line(record), flush=True)
            elif record.get("kind") == "status_rejected":
                result.statuses_rejected.append(record)
                print(
                    f"demo: the site REJECTED a status: {record.get('reason')}: {record.get('detail', '')}", flush=True
                )

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe([(f"{prefix}/status", 1), (f"{prefix}/stats", 1)])
    client.loop_start()
    options = ReceiverOptions(
        ConnectionOptions(BrokerUrl("127.0.0.1", port, tls=False)), tuple(registry.alert_filters())
    )
    with (
        SeenStore(workdir / "seen.sqlite", window_s=86400) as seen,
        AlertReceiver(
            options, AlertVerifier(registry, recipient, seen), on_reject=on_reject, status_signer=signer
        ) as receiver,
    ):
        receiver.wait_subscribed(10)
        print(f"demo: receiving as {recipient!r} with the trust registry {workdir / 'registry.yaml'}", flush=True)
        print(f"demo: {recipient!r} answers each alert with a signed 'received' (its public key: {jwk})", flush=True)
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
                site_records()
                item = receiver.get(0.2)
                if item is None:
                    continue
                result.alerts.append(item.accepted.data)
                print(alert_line(item.accepted.data, item.topic), flush=True)
                receiver.done(item)
        except KeyboardInterrupt:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
        site_records()
    client.loop_stop()
    client.disconnect()
    return result


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


def _print_summary(result: DemoResult) -> None:
    received = result.alerts
    phases = Counter((a.get("detection") or {}).get("phase") for a in received)
    incidents = {a.get("incidents") for a in received}
    print("\ndemo summary")
    print(f"  alerts received and verified : {len(received)}")
    print(f"  incidents                    : {len(incidents)}")
    for phase in ("start", "update", "end"):
        print(f"  {phase:<29}: {phases.get(phase, 0)}")
    for line in summary_status_lines(result):
        print(line)


def summary_status_lines(result: DemoResult) -> list[str]:
    """The summary's lines about statuses: how many came back and the site verified, how fast."""
    back = [r for r in result.statuses if r.get("status") == "received"]
    times = [r["since_published_s"] for r in back if isinstance(r.get("since_published_s"), int | float)]
    line = f"  statuses back (received, verified by the site) : {len(back)}"
    if times:
        line += f", median {statistics.median(times) * 1000:.0f} ms from publish to received"
    lines = [line]
    if result.statuses_rejected:
        lines.append(f"  statuses the site rejected   : {len(result.statuses_rejected)}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
