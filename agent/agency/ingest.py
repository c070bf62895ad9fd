"""The ingest service: every alert for this recipient verified, stored once, acknowledged, answered `received`.

It subscribes with a persistent MQTT 5 session (a fixed client id and a
session expiry, so the broker queues what arrives while it is away) to every
registered site's alert topics, and to their status and stats topics for
site health. Each alert goes through the `AlertVerifier` (signature, site,
topic, recipient, freshness) with the store itself as the duplicate check
(`agent.agency.store.seen`), is stored in one transaction
(`StoreWriter.add_alert`), and only then acknowledged to the broker and
answered with the signed `received` status, which is recorded too. A
message stored by another replica first is acknowledged without a second
`received`. The process holds no state a second replica would need: the
database is the state. At start it first answers what a killed ingest left
unanswered (`agent.agency.unanswered`).

Brokers: the service is connected to one node of a cluster at a time and
moves to the next of `broker.urls` when that connection ends, or, with
`broker.connect_to: every` (separate brokers that share nothing), keeps a
connection on each (`agent.agency.receiver_group`). Either way an alert is
acknowledged and answered on the connection it came through.

Replicas: with `broker.shared_group` set, the alert filters are subscribed
as the MQTT 5 shared subscription `$share/<group>/<filter>`, so the broker
hands each alert to one of the replicas in the group; `replica` names this
one, and its client id (`<client_id>-<replica>`), a persistent session of
its own. The sites' status and stats topics stay plain subscriptions, so
every replica records site health. Whichever replica stores an alert first
answers `received`; any other copy is acknowledged in silence. A broker
keeps dealing alerts to a member whose session it keeps (Mosquitto does,
while the member is away), so a replica that leaves for good ends its
session with `leave_group`.

A database that fails (a PostgreSQL restart, a lost network) makes the
service wait, never stop: the schema check at start and every write are
retried with the one backoff policy until they work or the service stops,
and the duplicate check before a write answers "not seen" while the
database cannot be read (`agent.agency.store.seen`). The alert stays
unacknowledged meanwhile, so a crash loses nothing (the broker delivers it
again), and the store's unique key keeps a redelivered copy from being
stored twice. Expired alerts (past the `expires` the agreement's retention
set) are purged every `retention.purge_interval_s`.
"""

from __future__ import annotations

__all__ = ["IngestCounts", "IngestService", "leave_group"]

import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Self

from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.broker_connection import ConnectionOptions, connect, new_client
from agent.agency.receiver_group import ReceiverGroup
from agent.agency.receiving_config import ReceivingConfig
from agent.agency.site_health import SiteHealth, parse_health, plain_filters
from agent.agency.status_sender import StatusSigner
from agent.agency.store import StoreError, StoreWriter, open_database
from agent.agency.store.database import migrate_database
from agent.agency.store.seen import StoredAlerts
from agent.agency.subscriber import ReceivedAlert, ReceiverOptions
from agent.agency.trust_registry import TrustRegistry
from agent.agency.trust_registry_file import load_registry
from agent.agency.unanswered import answer_unanswered
from agent.backoff import Backoff
from agent.errors import AgentError, PublishRejected
from agent.logs import log_event

_log = logging.getLogger("agent.agency.ingest")
# A database that fails is retried soon, then every few seconds.
DB_RETRY = Backoff(initial_s=0.2, max_s=5.0)
POLL_S = 0.2
START_TIMEOUT_S = 15.0
_Write = Callable[[], object]
_STOPPED = object()


@dataclass(slots=True)
class IngestCounts:
    """Since start: alerts stored, copies found in the store, statuses recorded (refusals: `IngestService.rejected`)."""

    stored: int = 0
    duplicates: int = 0
    statuses: int = 0
    health: int = 0
    purged: int = 0


def leave_group(config: ReceivingConfig, replica: str | None, timeout_s: float = 10.0) -> str:
    """End a replica's session at the broker for good (scaling down); its client id.

    It connects once under the replica's client id with a clean start and no
    session expiry: the broker drops the session, its shared subscription and
    whatever is still queued in it, and deals no more alerts to it. Stop the
    replica first, at a moment no alerts arrive, so nothing is queued for it.
    With `broker.connect_to: every` it does so on each broker; else on the
    first broker that answers (a cluster's nodes share the session).

    Raises:
        PublishRejected: a broker refused the connection.
        AgentError: a broker cannot be reached, or did not answer within `timeout_s`.
    """
    options = dataclasses.replace(config.connection(role="ingest", replica=replica), session_expiry_s=0)
    if config.broker.connect_to == "every":
        for url in options.urls:
            _end_session(dataclasses.replace(options, url=url, fallback_urls=()), timeout_s)
    else:
        _end_session(options, timeout_s)
    log_event(_log, "ingest_left_group", client_id=options.client_id, shared_group=config.broker.shared_group or "-")
    return options.client_id


def _end_session(options: ConnectionOptions, timeout_s: float) -> None:
    client = new_client(options)
    answered = threading.Event()
    refused: list[PublishRejected] = []

    def on_connect(c: object, userdata: object, flags: object, reason: ReasonCode, p: object) -> None:
        if reason.is_failure:
            refused.append(PublishRejected(f"broker refused the connection: {reason}", reason_code=reason.value))
        answered.set()

    client.on_connect = on_connect
    connect(client, options)
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            raise AgentError(f"no answer from the broker within {timeout_s:g} s")
        if refused:
            raise refused[0]
    finally:
        client.disconnect()
        client.loop_stop()


class IngestService:
    """One ingest process (see the module docstring); `run` until `stop`."""

    def __init__(
        self,
        config: ReceivingConfig,
        *,
        engine: Engine | None = None,
        registry: TrustRegistry | None = None,
        replica: str | None = None,
    ) -> None:
        """A service for `config`; `replica` names this one of several sharing the alerts (see the module docstring).

        Raises:
            StoreError: a database URL that cannot be used.
            AgentError: a replica name that cannot be part of a client id.
        """
        self.config = config
        # Migrated in `run`, retried there: a database still starting is waited for, not fatal.
        self._migrated = engine is not None
        self.engine = engine or open_database(config.database, migrate=False)
        self.registry = registry or load_registry(config.registry)
        self.writer = StoreWriter(self.engine)
        self.counts = IngestCounts()
        self._health: queue.Queue[SiteHealth] = queue.Queue()
        self._stopping = threading.Event()
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: AgentError | None = None
        self._rng = random.Random()
        self._signer = signer = (
            StatusSigner.from_file(config.status_key, config.recipient, config.status_kid)
            if config.status_key is not None
            else None
        )
        verifier = AlertVerifier(self.registry, config.recipient, StoredAlerts(self.engine), config.freshness_policy)
        group = config.broker.shared_group
        alert_filters = tuple(self.registry.alert_filters())
        options = ReceiverOptions(
            config.connection(role="ingest", replica=replica),
            tuple(f"$share/{group}/{f}" for f in alert_filters) if group else alert_filters,
            plain_filters(self.registry),
        )
        self.options = options
        self.receiver = ReceiverGroup(
            options,
            verifier,
            every_broker=config.broker.connect_to == "every",
            status_signer=signer,
            on_plain=self._on_plain,
        )

    @property
    def rejected(self) -> int:
        """Messages refused since start, for any reason but being a copy (the receiver counts them by reason)."""
        return self.receiver.rejected

    def stop(self) -> None:
        self._stopping.set()

    def __enter__(self) -> Self:
        """Run on a thread of its own (`ingest`) until the block ends; subscribed when this returns.

        Raises:
            AgentError: the service could not start (broker refused, subscription refused).
        """
        self._thread = threading.Thread(target=self._run_thread, name="ingest", daemon=True)
        self._thread.start()
        self.ready.wait(START_TIMEOUT_S)
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_S)

    def _run_thread(self) -> None:
        try:
            self.run()
        except AgentError as err:
            log_event(_log, "ingest_failed", logging.ERROR, error=str(err))
            self._failure = err
            self.ready.set()

    def run(self, *, timeout_s: float | None = None) -> IngestCounts:
        """Receive and store until `stop` (or `timeout_s`); the counts.

        Raises:
            PublishRejected: the broker refused the connection.
            AgentError: the subscription could not be made.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        next_purge = 0.0
        if not self._migrated:
            if self._retrying("schema", partial(migrate_database, self.engine)) is _STOPPED:
                return self.counts
            self._migrated = True
        if self._signer is not None:
            answer = partial(answer_unanswered, self.config, self.engine, self.registry, self._signer)
            if self._retrying("unanswered", answer) is _STOPPED:
                return self.counts
        with self.receiver:
            self.receiver.wait_subscribed(10.0)
            log_event(
                _log,
                "ingest_ready",
                recipient=self.config.recipient,
                database=self._database_name(),
                client_id=self.options.connection.client_id,
                brokers=",".join(str(u) for u in self.options.connection.urls),
                shared_group=self.config.broker.shared_group or "-",
            )
            self.ready.set()
            while not self._stopping.is_set() and (deadline is None or time.monotonic() < deadline):
                if time.monotonic() >= next_purge:
                    self._purge()
                    next_purge = time.monotonic() + self.config.retention.purge_interval_s
                self._store_health()
                item = self.receiver.get(POLL_S)
                if item is not None:
                    self._store(item)
            self._store_health()
        return self.counts

    def _database_name(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _store(self, item: ReceivedAlert) -> None:
        accepted = item.accepted
        # One time for every attempt: a retry then recognises its own row (see `StoreWriter.add_alert`).
        received_at = time.time()
        stored = self._retrying(
            "alert",
            lambda: self.writer.add_alert(accepted, item.message, received_at),
            alert_id=accepted.alert.identifier,
        )
        if stored is _STOPPED:
            return  # not acknowledged: the broker delivers it again after the restart
        duplicate = stored is None
        status = self.receiver.done(item, send_received=not duplicate)
        if duplicate:
            self.counts.duplicates += 1
            return
        self.counts.stored += 1
        if status is not None:
            self._retrying("status", lambda: self.writer.add_status(status, published=True), alert_id=status.alert_id)
            self.counts.statuses += 1

    def _retrying(self, what: str, write: _Write, **fields: str) -> object:
        """`write()`'s result, retried while the store fails; `_STOPPED` if the service stopped first."""
        failures = 0
        while True:
            try:
                return write()
            except StoreError as err:
                failures += 1
                delay = DB_RETRY.delay_s(failures, self._rng)
                log_event(
                    _log, "store_failed", logging.ERROR, what=what, error=str(err), retry_s=f"{delay:.1f}", **fields
                )
                if self._stopping.wait(delay):
                    return _STOPPED

    def _on_plain(self, topic: str, payload: bytes) -> None:
        # On paho's network thread: parse here (cheap, bounded), write on the service's thread.
        health = parse_health(self.registry, topic, payload)
        if health is not None:
            self._health.put(health)

    def _store_health(self) -> None:
        while True:
            try:
                health = self._health.get_nowait()
            except queue.Empty:
                return
            now = time.time()
            if health.kind == "state" and health.state is not None:
                self._retrying("site", partial(self.writer.set_site_state, health.site_id, health.state, now))
            elif health.stats is not None:
                self._retrying("site", partial(self.writer.set_site_stats, health.site_id, health.stats, now))
            self.counts.health += 1

    def _purge(self) -> None:
        try:
            purged = self.writer.purge_expired(time.time())
        except StoreError as err:
            log_event(_log, "purge_failed", logging.ERROR, error=str(err))
            return
        if purged.alerts:
            self.counts.purged += purged.alerts
            log_event(_log, "purged", alerts=purged.alerts, incidents=purged.incidents, statuses=purged.statuses)
