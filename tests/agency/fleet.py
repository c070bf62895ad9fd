"""A simulated fleet for the fleet test and benchmark: many sites, a real Mosquitto, ingest replicas as processes.

- `Fleet`: N sites, each with its own Ed25519 key in the trust registry, and
  their alerts built and signed ahead of time (so the publisher is never what
  is measured), the sites taking turns.
- `SiteConnections`: one MQTT 5 connection per site (its own client id, QoS 1,
  clean session, as a site's publisher), all driven by one thread through
  paho's external-loop calls, publishing at a set rate. Each site also
  subscribes to its own feedback topic, so the time its `received` comes back
  is known per alert.
- `IngestReplica`: a real `edge-agent console ingest --replica N` process,
  its log in a file; ready once it logs `event=ingest_ready`.
- `ingest_fleet`: a Mosquitto of its own (`BROKER_CONF`), a receiving config
  with `broker.shared_group`, and that many replicas started and subscribed.
- `store_check`: what SQL says was stored: rows, distinct (site, alert) keys,
  `received` statuses and alerts answered more than once.
"""

from __future__ import annotations

__all__ = [
    "BROKER_CONF",
    "Fleet",
    "IngestReplica",
    "Published",
    "SiteConnections",
    "StoreCheck",
    "ingest_fleet",
    "store_check",
]

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from agent.agency.store.tables import alerts, statuses
from agent.delivery.jws import open_envelope
from agent.delivery.topics import feedback_filter
from tests.agency.receiving_setup import write_receiving_config
from tests.agency.v2_alerts import Site, signed_alert, write_registry
from tests.brokers import MosquittoBroker

Item = tuple[str, str, str, bytes]  # site id, alert id, topic, JWS
EDGE_AGENT = Path(sys.executable).with_name("edge-agent")
# As config/mosquitto/agency-broker.conf: what a subscriber's session may hold beyond its in-flight window
# (a replica that is away keeps receiving its share into it). In-flight window: Mosquitto's default 20.
BROKER_CONF = "max_queued_messages 10000"


class Fleet:
    """`count` sites with keys, their registry file, and signed alerts."""

    def __init__(self, count: int, *, name: str = "site") -> None:
        self.sites = [Site(f"{name}-{i:04d}") for i in range(count)]

    def write_registry(self, path: Path) -> Path:
        return write_registry(path, self.sites)

    def alerts(self, count: int, first: int = 1) -> list[Item]:
        """Alerts numbered from `first`, the sites taking turns; each (site id, alert id, topic, JWS)."""
        out = []
        for n in range(first, first + count):
            site = self.sites[n % len(self.sites)]
            message = signed_alert(site, n)
            alert_id = json.loads(open_envelope(message).payload)["identifier"]
            out.append((site.site_id, alert_id, site.topic(), message))
        return out


@dataclass
class Published:
    """Wall times (`time.time()`) per alert id: when it was published, when its (first) `received` reached the
    site; how many `received` each alert got, and the PUBACKs the sites had."""

    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    acked: int = 0


class SiteConnections:
    """One connection per site, one thread (see the module docstring). Use as a context manager."""

    def __init__(self, port: int, sites: Sequence[Site], *, feedback: bool = True) -> None:
        self.port = port
        self.published = Published()
        self._selector = selectors.DefaultSelector()
        self._clients: dict[str, paho.Client] = {}
        self._connected = 0
        self._subscribed = 0
        self._feedback = feedback
        self._held_back: set[paho.Client] = set()
        self._next_misc = 0.0
        for site in sites:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{site.site_id}", protocol=paho.MQTTv5)
            client.on_connect = self._on_connect(site)
            client.on_subscribe = self._on_subscribe
            client.on_publish = self._on_publish
            client.on_message = self._on_message
            self._clients[site.site_id] = client

    def _on_connect(self, site: Site) -> Callable[..., None]:
        def connected(client: paho.Client, userdata: object, flags: object, reason: object, p: object) -> None:
            self._connected += 1
            if self._feedback:
                client.subscribe(feedback_filter(site.prefix, site.site_id), qos=1)

        return connected

    def _on_subscribe(self, *args: object) -> None:
        self._subscribed += 1

    def _on_publish(self, *args: object) -> None:
        self.published.acked += 1

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        status = json.loads(open_envelope(bytes(msg.payload)).payload)
        if status.get("status") == "received":
            self.published.received.setdefault(status["alert_id"], time.time())
            self.published.answers[status["alert_id"]] += 1

    def __enter__(self) -> SiteConnections:
        for client in self._clients.values():
            client.connect("127.0.0.1", self.port, keepalive=60)
            sock = client.socket()
            if sock is not None:
                self._selector.register(sock, selectors.EVENT_READ, client)
        want = len(self._clients)
        if not self.pump_until(lambda: self._connected >= want and self._subscribed >= want * self._feedback, 30):
            raise RuntimeError(f"{self._connected} of {want} sites connected and subscribed")
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients.values():
            client.disconnect()
        self._selector.close()

    def pump(self, timeout_s: float) -> None:
        """Read what the sockets have, for at most `timeout_s`; write what a full socket held back; keep alive."""
        for key, _ in self._selector.select(timeout_s):
            key.data.loop_read()
            if key.data.want_write():  # what its callbacks sent (a SUBSCRIBE, a PUBACK) waits for a write
                self._held_back.add(key.data)
        # Outside its callbacks paho writes at once (no thread of its own runs); a full socket leaves the rest.
        for client in list(self._held_back):
            client.loop_write()
            if not client.want_write():
                self._held_back.discard(client)
        if time.monotonic() >= self._next_misc:  # keep-alive pings, one pass over all clients a second
            self._next_misc = time.monotonic() + 1.0
            for client in self._clients.values():
                client.loop_misc()

    def pump_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            self.pump(0.02)
        return True

    def publish(
        self, items: Sequence[Item], rate_hz: float, *, then_at: int = -1, then: Callable[[], None] = lambda: None
    ) -> Published:
        """Publish `items` at `rate_hz` (0: as fast as the loop goes), each by its own site, and wait for every
        PUBACK; `then()` runs just before item number `then_at` goes out."""
        start, acked_before = time.monotonic(), self.published.acked
        for i, (site_id, alert_id, topic, message) in enumerate(items):
            if i == then_at:
                then()
            due = start + i / rate_hz if rate_hz > 0 else 0.0
            while time.monotonic() < due:
                self.pump(max(0.0, min(0.01, due - time.monotonic())))
            self.published.sent[alert_id] = time.time()
            client = self._clients[site_id]
            client.publish(topic, message, qos=1)
            if client.want_write():
                self._held_back.add(client)
            if i % 64 == 0:
                self.pump(0)
        if not self.pump_until(lambda: self.published.acked - acked_before >= len(items), 60):
            raise RuntimeError(f"{self.published.acked - acked_before} of {len(items)} publishes acknowledged")
        return self.published

    def wait_received(self, count: int, timeout_s: float) -> bool:
        return self.pump_until(lambda: len(self.published.received) >= count, timeout_s)


class IngestReplica:
    """One `edge-agent console ingest` process (see the module docstring)."""

    def __init__(self, config_file: Path, replica: str, log_dir: Path) -> None:
        self.config_file, self.replica = config_file, replica
        self.log_file = log_dir / f"ingest-{replica}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0

    def start(self) -> IngestReplica:
        command = [str(EDGE_AGENT)] if EDGE_AGENT.exists() else [sys.executable, "-m", "agent"]
        self._log_from = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [*command, "console", "ingest", "--config", str(self.config_file), "--replica", self.replica],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until this run of the process has subscribed.

        Raises:
            RuntimeError: it exited first, or did not get there within `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        while "event=ingest_ready" not in self.log()[self._log_from :]:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"ingest replica {self.replica} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingest replica {self.replica} not ready in {timeout_s:g} s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no goodbye to the broker, nothing flushed; the broker keeps its session."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stored(self) -> int:
        """Alerts this run of the process stored, from the counts it prints when it stops (0 before that)."""
        found = re.findall(r"^stored=(\d+) ", self.log()[self._log_from :], re.M)
        return int(found[-1]) if found else 0


@dataclass(frozen=True, slots=True)
class StoreCheck:
    rows: int  # rows in `alerts`
    keys: int  # distinct (site id, alert id) among them
    received: int  # `received` statuses recorded
    answered_twice: int  # alerts with more than one `received`
    alert_ids: frozenset[str]


def store_check(engine: Engine) -> StoreCheck:
    with engine.connect() as c:
        rows = int(c.execute(select(func.count()).select_from(alerts)).scalar_one())
        keys = select(alerts.c.site_id, alerts.c.alert_id).distinct().subquery()
        distinct = int(c.execute(select(func.count()).select_from(keys)).scalar_one())
        received = statuses.c.status == "received"
        answered = int(c.execute(select(func.count()).select_from(statuses).where(received)).scalar_one())
        per_alert = select(statuses.c.alert_id).where(received).group_by(statuses.c.alert_id)
        twice = per_alert.having(func.count() > 1).subquery()
        answered_twice = int(c.execute(select(func.count()).select_from(twice)).scalar_one())
        ids = frozenset(c.execute(select(alerts.c.alert_id)).scalars())
    return StoreCheck(rows, distinct, answered, answered_twice, ids)


@contextmanager
def ingest_fleet(
    work: Path,
    registry_file: Path,
    database: str,
    replicas: int,
    *,
    broker_conf: str = BROKER_CONF,
    broker_log_all: bool = True,
) -> Iterator[tuple[MosquittoBroker, Path, list[IngestReplica]]]:
    """A broker, a receiving config sharing the alerts in one group, and `replicas` running replicas (stopped
    with SIGTERM at the end); (broker, config file, replicas). `broker_log_all` False logs warnings and errors
    only (a line for every packet costs the broker more than routing it)."""
    with ExitStack() as stack:
        broker = MosquittoBroker(work / "broker", extra_conf=broker_conf)
        if not broker_log_all:
            conf = broker.conf_file.read_text().replace("log_type all", "log_type error\nlog_type warning")
            broker.conf_file.write_text(conf)
        stack.enter_context(broker)
        assert broker.port is not None
        config = write_receiving_config(
            work / "rx",
            broker.port,
            registry_file,
            client_id="fleet-ingest",
            database=database,
            shared_group="fleet",
        )
        running = [IngestReplica(config, str(n), work).start() for n in range(1, replicas + 1)]
        stack.callback(lambda: [r.stop() for r in running])
        for replica in running:
            replica.wait_ready()
        yield broker, config, running
