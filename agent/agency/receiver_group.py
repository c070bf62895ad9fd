"""The ingest service's receivers: one per broker connection, their accepted alerts in one queue.

With one broker, or the nodes of one cluster (`broker.connect_to: one`),
the group is one `AlertReceiver`, connected to one node at a time and moved
to the next when its connection ends. With separate brokers that share
nothing (`connect_to: every`, a failover pair of Mosquittos that are not
bridged) a site may publish to either of them, and what a broker
acknowledged is only ever delivered by that broker: so the group keeps one
receiver, with a persistent session of its own, on each broker. Each
receiver verifies what its broker brings and acknowledges it (and sends
`received`) on that same connection, the one its site used; the store's
unique key makes an alert that came through two brokers (a site that moved
before its PUBACK came) one row. A broker that is down at start, or goes
down, is retried in the background while the others carry on.
"""

from __future__ import annotations

__all__ = ["ReceiverGroup"]

import dataclasses
import queue
import time
from contextlib import ExitStack
from types import TracebackType
from typing import Self

from agent.agency.alert_verifier import AlertVerifier
from agent.agency.received_alert import PlainHook, ReceivedAlert, ReceiverOptions
from agent.agency.status_sender import StatusSigner
from agent.agency.subscriber import AlertReceiver
from agent.alerts.status import AlertStatus
from agent.errors import AgentError

_POLL_S = 0.05


class ReceiverGroup:
    """Several `AlertReceiver`s behind the one surface the ingest service uses (see the module docstring).

    Args:
        options: the connection (every broker in `connection.urls`) and the filters.
        verifier: checks each message (shared: it holds no per-connection state).
        every_broker: a receiver on each broker (True), or one moved along the list (False).
        status_signer, on_plain: as `AlertReceiver`'s.
    """

    def __init__(
        self,
        options: ReceiverOptions,
        verifier: AlertVerifier,
        *,
        every_broker: bool,
        status_signer: StatusSigner | None = None,
        on_plain: PlainHook | None = None,
    ) -> None:
        self._accepted: queue.Queue[ReceivedAlert] = queue.Queue()
        conn = options.connection
        if every_broker and conn.fallback_urls:
            each = [
                dataclasses.replace(
                    options,
                    connection=dataclasses.replace(conn, url=url, fallback_urls=()),
                    start_without_broker=True,
                )
                for url in conn.urls
            ]
        else:
            each = [options]
        self.members = [
            AlertReceiver(
                member, verifier, status_signer=status_signer, on_plain=on_plain, handoff=self._accepted, origin=n
            )
            for n, member in enumerate(each)
        ]
        self._stack = ExitStack()

    @property
    def rejected(self) -> int:
        """Messages rejected for any reason but being a duplicate, by every receiver."""
        return sum(m.rejected for m in self.members)

    @property
    def duplicates(self) -> int:
        return sum(m.duplicates for m in self.members)

    def __enter__(self) -> Self:
        with ExitStack() as stack:
            for member in self.members:
                stack.enter_context(member)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def wait_subscribed(self, timeout_s: float) -> None:
        """Block until one receiver's subscriptions are in place (the others follow when their broker is up).

        Raises:
            PublishRejected: a broker refused the connection.
            AgentError: a filter was refused, or no broker subscribed within `timeout_s`.
        """
        if len(self.members) == 1:
            self.members[0].wait_subscribed(timeout_s)
            return
        deadline = time.monotonic() + timeout_s
        while True:
            for member in self.members:
                if member.subscription_settled:
                    member.wait_subscribed(0)  # returns, or raises its refusal
                    return
            if time.monotonic() >= deadline:
                raise AgentError(f"no broker answered with a subscription within {timeout_s:g} s")
            time.sleep(_POLL_S)

    def _raise_failure(self) -> None:
        for member in self.members:
            member.raise_failure()

    def get(self, timeout_s: float | None) -> ReceivedAlert | None:
        """The next alert any receiver accepted, or None after `timeout_s`; give it to `done` once used.

        Raises:
            SeenStoreError: a receiver's seen-store failed.
        """
        self._raise_failure()
        try:
            return self._accepted.get(timeout=timeout_s)
        except queue.Empty:
            self._raise_failure()
            return None

    def done(self, item: ReceivedAlert, *, send_received: bool = True) -> AlertStatus | None:
        """`AlertReceiver.done` on the receiver `item` came through: acknowledged on its connection.

        Raises:
            SeenStoreError: it could not be remembered.
        """
        return self.members[item.origin].done(item, send_received=send_received)
