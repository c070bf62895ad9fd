"""`make demo`: a local broker, the agent over a real clip, the receiving side with its web console.

Starts Mosquitto on a free loopback port, then the recipient's side the way
an agency runs it (`agent.cli.demo_receiving`): the ingest service, which
verifies each alert (signature, site, topic, recipient, freshness, novelty),
stores it and answers it with a signed `received` status, and the web
console (`edge-agent console`) at a printed URL with a printed demo login.
Then it runs `edge-agent run` over the clip with the demo config. It prints
one line per alert as it is stored, one per refused message and one per
status the site verified (read from the site's audit log: the `received` of
each alert, and whatever is sent from the console's buttons).

By default the clip plays in a loop and everything stays up until Ctrl-C, so
there is time to log in, watch alerts arrive and acknowledge one;
`--exit-after-clip` (`make demo DEMO_EXIT=1`) plays it once and ends. Either
way it stops what it started and prints a summary.
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
from paho.mqtt.enums import CallbackAPIVersion

from agent.agency.ingest import IngestService
from agent.agency.receiving_config import load_receiving_config
from agent.agency.store import StoreReader
from agent.alerts.ids import short_id
from agent.cli.demo_receiving import (
    ConsoleProcess,
    add_demo_user,
    demo_registry,
    feedback_keys_override,
    free_port,
    recipient_status_key,
    write_receiving_config,
)
from agent.config import SiteConfig, load_config


class DemoBroker:
    """A throwaway Mosquitto on a free loopback port, anonymous, no persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._conf = workdir / "mosquitto.conf"
        # set_tcp_nodelay as the shipped broker configs: a status would otherwise wait ~40 ms behind an ACK.
        conf = f"set_tcp_nodelay true\nlistener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        self._conf.write_text(conf)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DemoBroker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        # Its own session: Ctrl-C reaches the demo alone, which stops the agent before the broker.
        self._proc = subprocess.Popen(
            [binary, "-c", str(self._conf)], stderr=subprocess.DEVNULL, start_new_session=True
        )
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
    parser.add_argument("--exit-after-clip", action="store_true", help="play the clip once, then stop everything")
    args = parser.parse_args(argv)
    clip = str(Path(args.clip).resolve())
    loop = "false" if args.exit_after_clip else "true"
    overrides = [f"cameras.0.source={clip}", f"cameras.0.loop={loop}"]
    config = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory(prefix="edge-agent-demo-") as tmp, DemoBroker(Path(tmp)) as broker:
        print(f"demo: mosquitto listening on 127.0.0.1:{broker.port}", flush=True)
        result = _run_agent_and_listen(args.config, overrides, config, broker.port, Path(tmp))
    _print_summary(result)
    return 0 if result.alerts else 1


def _site_health_printer(port: int, prefix: str) -> mqtt.Client:
    """A plain client printing the site's retained status and its stats as they come."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):  # type: ignore[no-untyped-def]
        if msg.topic.endswith("/status"):
            print(f"demo: {msg.topic} = {msg.payload.decode(errors='replace')}", flush=True)
        elif msg.topic.endswith("/stats"):
            print(f"demo: stats {_stats_line(msg.payload)}", flush=True)

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe([(f"{prefix}/status", 1), (f"{prefix}/stats", 1)])
    client.loop_start()
    return client


def _agent_command(config_path: str, port: int, overrides: list[str]) -> list[str]:
    # The agent's own log lines go to stderr at warning level so the alerts stand out.
    cmd = [sys.executable, "-m", "agent", "--log-level", "warning", "run", "--config", config_path]
    for o in [f"mqtt.port={port}", *overrides]:
        cmd += ["--set", o]
    return cmd


def _run_agent_and_listen(
    config_path: str, overrides: list[str], config: SiteConfig, port: int, workdir: Path
) -> DemoResult:
    result = DemoResult()
    demo_registry(config, workdir)
    recipient = config.policies.recipients[0].name
    _, jwk = recipient_status_key(workdir, recipient)
    overrides = [*overrides, feedback_keys_override(config_path, recipient, jwk)]
    console_port = free_port()
    receiving_file = write_receiving_config(workdir, recipient, workdir / f"{recipient}-status.pem", port, console_port)
    receiving = load_receiving_config(receiving_file)
    audit = AuditTail(config.policies.audit_log)
    health = _site_health_printer(port, f"{config.mqtt.topic_prefix}/{config.site.id}")

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

    with IngestService(receiving) as ingest, ConsoleProcess(receiving_file, console_port) as console:
        user, password = add_demo_user(ingest.engine)
        reader = StoreReader(ingest.engine)
        print(f"demo: receiving as {recipient!r} with {receiving_file} (ingest service: verify, store, 'received')")
        print(f"demo: console at {console.url}  login: {user} / {password}", flush=True)
        cmd = _agent_command(config_path, port, overrides)
        print("demo: " + " ".join(cmd[1:]), flush=True)
        if not any(o.endswith("loop=false") for o in overrides):
            print("demo: the clip plays in a loop; Ctrl-C stops everything (make demo DEMO_EXIT=1 plays it once)")
        agent = subprocess.Popen(cmd, start_new_session=True)  # Ctrl-C is the demo's to pass on, in order
        seen = _StoredAlerts(reader, ingest, result)
        try:
            drain_until = None  # the agent has ended: what is still on its way gets a second
            while drain_until is None or time.monotonic() < drain_until:
                if drain_until is None and agent.poll() is not None:
                    drain_until = time.monotonic() + 1.0
                site_records()
                seen.print_new()
                time.sleep(0.2)
        except KeyboardInterrupt:
            print("\ndemo: stopping the agent (it ends its open incidents and flushes its outbox)", flush=True)
            _stop(agent)
            for _ in range(5):  # its last messages (the ends of open incidents) on their way
                time.sleep(0.2)
                seen.print_new()
                site_records()
        _stop(agent)
        site_records()
    health.loop_stop()
    health.disconnect()
    return result


class _StoredAlerts:
    """Prints each alert the ingest service stored, once, and keeps it for the summary."""

    def __init__(self, reader: StoreReader, ingest: IngestService, result: DemoResult) -> None:
        self._reader, self._ingest, self._result = reader, ingest, result
        self._last_seq = self._last_rejected = 0

    def print_new(self) -> None:
        for row in self._reader.alerts_after(self._last_seq):
            self._last_seq = row.seq
            self._result.alerts.append(row.payload())
            print(alert_line(row.payload(), row.topic), flush=True)
        rejected = self._ingest.rejected
        if rejected > self._last_rejected:
            print(f"demo: REJECTED {rejected - self._last_rejected} message(s) (see the log)", flush=True)
            self._last_rejected = rejected


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout_s`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
