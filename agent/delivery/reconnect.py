"""When the publisher connects again after a connection ended: the one retry policy, told what the broker is doing.

`ReconnectPolicy.after` looks at how each connection ended, says how long
to wait before the next attempt and which broker that attempt goes to
(`ReconnectPolicy.broker`); `ReconnectPolicy.wait` waits it out.

With several brokers (`mqtt.brokers`), every connection that ends, or attempt
that fails, moves the next attempt on to the next broker in the list (round
it, and after the last the first again), logged as `event=broker_failover`;
only a take-over stays where it is, since the broker works and another agent
holds the session there. The wait is the same one policy as with one broker:
the backoff restarts after a connection that worked, so a site whose broker
went away is on the next one within the first step (0.25-0.5 s by default),
and grows only while attempts keep failing, across the whole list.

- **Another agent took the session over** (a cloned SD card, a copied
  config: two agents with one client id). MQTT 5 brokers say so with a
  DISCONNECT carrying reason 0x8E "Session taken over"; Mosquitto 2.0 closes
  the connection without one, so connections that worked, were closed by the
  broker without a reason, and after which the broker still accepts a TCP
  connection at once, count as taken over from the second in a row. Fighting
  back (reconnecting at once, which takes the session from the other agent,
  which does the same) gives dozens of take-overs a minute and a flapping
  status, so the policy logs one clear line (`event=mqtt_session_taken_over`),
  keeps a `warning` for `edge-agent status`, and waits long: 30 s doubling to
  10 min, less up to half of it at random so two clones fall out of step. A
  connection that then lasts 20 min clears it.
- **The broker does not answer** (the TCP connection refused or timed out,
  or lost and not accepted again): the retry policy's wait
  (`agent.backoff.Backoff`), probed: once a second a plain TCP connect to the
  port of the broker tried next, and the wait ends as soon as it accepts. A
  site is back within about a second of its broker, not after a wait that
  grew through the outage.
- **Anything else** (a refused CONNACK, a TLS failure, no CONNACK in time):
  the retry policy's wait, not probed: the port answers anyway, and probing
  would turn a misconfiguration into a retry every second.
"""

from __future__ import annotations

__all__ = ["TAKEOVER_BACKOFF", "TAKEOVER_DETAIL", "ReconnectPolicy", "ReconnectWait", "SessionEnd", "session_end"]

import logging
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from agent.backoff import Backoff
from agent.config.messaging import BrokerAddress
from agent.delivery.outbox_drain import MqttSession
from agent.logs import log_event

_log = logging.getLogger("agent.delivery.publisher")

SESSION_TAKEN_OVER = 0x8E
CONNECTION_LOST = 0x80  # what paho reports when the socket closed without a DISCONNECT
TAKEOVER_DETAIL = "another agent connected with this client id: check for a cloned box or a copied config"
TAKEOVER_BACKOFF = Backoff(initial_s=30.0, max_s=600.0, jitter=0.5)
_INFERRED_AFTER = 2  # reasonless closes in a row, the broker up, that mean a take-over
_CLEARED_AFTER_S = 1200.0  # a connection lasting this long ends a spell of take-overs
_PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How one connection attempt ended.

    Attributes:
        connected: the broker had accepted it (CONNACK success).
        lasted_s: from the CONNACK to the loss (0 when never connected).
        reason_code: the disconnect's reason code as paho reported it (0 when none).
        from_server: the broker sent a DISCONNECT packet with that reason.
        unreachable: the TCP connection itself failed (refused, no route, timed out).
    """

    connected: bool
    lasted_s: float = 0.0
    reason_code: int = 0
    from_server: bool = False
    unreachable: bool = False


def session_end(session: MqttSession) -> SessionEnd:
    lasted_s = time.monotonic() - session.connected_mono_s if session.was_connected else 0.0
    return SessionEnd(
        session.was_connected, lasted_s, session.lost_reason_code, session.lost_from_server, session.unreachable
    )


@dataclass(frozen=True, slots=True)
class ReconnectWait:
    """The wait before the next attempt.

    Attributes:
        delay_s: how long, at most.
        attempt: the failure (or take-over) number it is the wait after.
        probe: end it early when the broker's port, seen closed, accepts again.
        taken_over: another agent holds the session.
    """

    delay_s: float
    attempt: int
    probe: bool = False
    taken_over: bool = False


class ReconnectPolicy:
    """Decides and waits out the pause between connection attempts (see the module docstring).

    Args:
        brokers: the brokers, in the order tried (at least one).
        client_id: the MQTT client id, for the take-over report.
        backoff: the wait after an ordinary failure.
        takeover: the wait after a take-over.
        probe_interval_s: time between two TCP probes while the broker is down.
        rng: source of the jitter.
    """

    def __init__(
        self,
        brokers: Sequence[BrokerAddress],
        client_id: str,
        *,
        backoff: Backoff,
        takeover: Backoff = TAKEOVER_BACKOFF,
        probe_interval_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        if not brokers:
            raise ValueError("a reconnect policy needs at least one broker")
        self._brokers = tuple(brokers)
        self._index = 0
        self._client_id = client_id
        self._backoff = backoff
        self._takeover = takeover
        self._probe_interval_s = probe_interval_s
        self._rng = rng or random.Random()
        self._failures = 0
        self._closed_in_row = 0  # reasonless closes by a broker that still answered
        self._takeovers_in_row = 0
        self._takeovers = 0
        self._last_takeover_mono = 0.0

    @property
    def broker(self) -> BrokerAddress:
        """The broker the next (or current) connection goes to."""
        return self._brokers[self._index]

    @property
    def takeovers(self) -> int:
        """Take-overs since start."""
        return self._takeovers

    @property
    def warning(self) -> str:
        """What `edge-agent status` should say while a spell of take-overs lasts ('' when none)."""
        if not self._takeovers_in_row:
            return ""
        ago_s = time.monotonic() - self._last_takeover_mono
        return (
            f"MQTT session taken over {self._takeovers} times (last {ago_s:.0f} s ago): another agent connected "
            f"with client id {self._client_id}: check for a cloned box or a copied config"
        )

    def after(self, end: SessionEnd) -> ReconnectWait:
        """The wait after a connection to `broker` that ended as `end` (logs a take-over and a failover)."""
        if end.connected:
            self._failures = 0  # the backoff restarts after a connection that worked
            if end.lasted_s >= _CLEARED_AFTER_S:
                self._closed_in_row = self._takeovers_in_row = 0
        evidence, port_closed = self._takeover_evidence(end)
        if evidence:
            return self._taken_over(evidence)
        self._failures += 1
        delay_s = self._backoff.delay_s(self._failures, self._rng)
        self._fail_over(end)
        return ReconnectWait(delay_s, self._failures, probe=port_closed)

    def _fail_over(self, end: SessionEnd) -> None:
        """Move the next attempt on to the next broker (nothing to do with one)."""
        if len(self._brokers) == 1:
            return
        left = self.broker
        self._index = (self._index + 1) % len(self._brokers)
        self._closed_in_row = 0  # reasonless closes count per broker
        log_event(
            _log,
            "broker_failover",
            logging.WARNING if end.connected else logging.INFO,
            left=str(left),
            next=str(self.broker),
            was_connected=end.connected,
        )

    def _takeover_evidence(self, end: SessionEnd) -> tuple[str, bool]:
        """Why this end means a take-over ('' when it does not), and whether the broker's port was seen closed."""
        if not end.connected:
            if end.unreachable:
                self._closed_in_row = self._takeovers_in_row = 0  # the broker is down, nobody holds our session
            return "", end.unreachable
        if end.from_server and end.reason_code == SESSION_TAKEN_OVER:
            return "DISCONNECT 0x8E Session taken over", False
        if end.from_server or end.reason_code != CONNECTION_LOST:
            self._closed_in_row = self._takeovers_in_row = 0  # another reason given, or a keepalive timeout
            return "", False
        if not self._broker_answers():
            self._closed_in_row = self._takeovers_in_row = 0
            return "", True
        self._closed_in_row += 1
        if self._takeovers_in_row or self._closed_in_row >= _INFERRED_AFTER:
            return (
                f"the broker closed {self._closed_in_row} working connections in a row without a reason"
                " and accepts new ones",
                False,
            )
        return "", False

    def _taken_over(self, evidence: str) -> ReconnectWait:
        self._takeovers_in_row += 1
        self._takeovers += 1
        self._last_takeover_mono = time.monotonic()
        delay_s = self._takeover.delay_s(self._takeovers_in_row, self._rng)
        log_event(
            _log,
            "mqtt_session_taken_over",
            logging.ERROR,
            client_id=self._client_id,
            detail=TAKEOVER_DETAIL,
            evidence=evidence,
            takeovers=self._takeovers,
            wait_s=f"{delay_s:.0f}",
        )
        return ReconnectWait(delay_s, self._takeovers_in_row, taken_over=True)

    def wait(self, wait: ReconnectWait, stopping: threading.Event) -> None:
        """Wait `wait.delay_s`, or until `stopping` is set, or (probed) until the next broker's port accepts."""
        started = time.monotonic()
        deadline = started + wait.delay_s
        while (left_s := deadline - time.monotonic()) > 0:
            if stopping.wait(min(self._probe_interval_s, left_s)):
                return
            if wait.probe and deadline > time.monotonic() and self._broker_answers():
                log_event(
                    _log,
                    "broker_answering",
                    host=self.broker.host,
                    port=self.broker.port,
                    waited_s=f"{time.monotonic() - started:.1f}",
                    instead_of_s=f"{wait.delay_s:.1f}",
                )
                return

    def _broker_answers(self) -> bool:
        """Whether `broker`'s port accepts a TCP connection now (closed again at once)."""
        try:
            socket.create_connection((self.broker.host, self.broker.port), timeout=_PROBE_TIMEOUT_S).close()
        except OSError:
            return False
        return True
