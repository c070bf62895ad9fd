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
database is the state.

A database write that fails is retried with the one backoff policy until it
works or the service stops; the alert stays unacknowledged meanwhile, so a
crash loses nothing (the broker delivers it again). Expired alerts (past the
`expires` the agreement's retention set) are purged every
`retention.purge_interval_s`.
"""

from __future__ import annotations

__all__ = ["IngestCounts", "IngestService"]

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

from sqlalchemy import Engine

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.receiving_config import ReceivingConfig
from agent.agency.rejections import Rejected
from agent.agency.site_health import SiteHealth, parse_health, plain_filters
from agent.agency.status_sender import StatusSigner
from agent.agency.store import StoreError, StoreWriter, open_database
from agent.agency.store.seen import StoredAlerts
from agent.agency.subscriber import AlertReceiver, ReceivedAlert, ReceiverOptions
from agent.agency.trust_registry import TrustRegistry
from agent.agency.trust_registry_file import load_registry
from agent.backoff import Backoff
from agent.errors import AgentError
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
    """Since start: alerts stored, duplicates found in the store, statuses recorded, rejected messages."""

    stored: int = 0
    duplicates: int = 0
    statuses: int = 0
    rejected: int = 0
    health: int = 0
    purged: int = 0


class IngestService:
    """One ingest process (see the module docstring); `run` until `stop`."""

    def __init__(
        self,
        config: ReceivingConfig,
        *,
        engine: Engine | None = None,
        registry: TrustRegistry | None = None,
    ) -> None:
        self.config = config
        self.engine = engine or open_database(config.database)
        self.registry = registry or load_registry(config.registry)
        self.writer = StoreWriter(self.engine)
        self.counts = IngestCounts()
        self._health: queue.Queue[SiteHealth] = queue.Queue()
        self._stopping = threading.Event()
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: AgentError | None = None
        self._rng = random.Random()
        signer = (
            StatusSigner.from_file(config.status_key, config.recipient, config.status_kid)
            if config.status_key is not None
            else None
        )
        verifier = AlertVerifier(self.registry, config.recipient, StoredAlerts(self.engine), config.freshness_policy)
        options = ReceiverOptions(
            config.connection(role="ingest"),
            tuple(self.registry.alert_filters()),
            plain_filters(self.registry),
        )
        self.receiver = AlertReceiver(
            options, verifier, on_reject=self._rejected, status_signer=signer, on_plain=self._on_plain
        )

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
        with self.receiver:
            self.receiver.wait_subscribed(10.0)
            log_event(_log, "ingest_ready", recipient=self.config.recipient, database=self._database_name())
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
        stored = self._retrying(
            "alert",
            lambda: self.writer.add_alert(accepted, item.message, time.time()),
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

    def _rejected(self, topic: str, why: Rejected) -> None:
        if why.reason != "duplicate":
            self.counts.rejected += 1
