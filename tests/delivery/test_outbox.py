"""The durable outbox: order, persistence, the drop rule, expiry, rejected messages."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import OutboxConfig
from agent.delivery.outbox import OutboundMessage, Outbox


def _msg(
    n: int, rank: int = 1, size: int = 100, expiry_s: int | None = None, created: datetime | None = None
) -> OutboundMessage:
    payload = f"{n:08d}".encode() + b"x" * (size - 8)
    return OutboundMessage.for_payload(f"edge/s/c/alerts/r{n}", payload, rank, expiry_s, created)


def test_messages_come_back_in_order_and_survive_reopening(tmp_path: Path) -> None:
    cfg = OutboxConfig(path=tmp_path / "o.sqlite")
    with Outbox(cfg) as box:
        for n in range(20):
            assert box.put(_msg(n))
        box.ack_many([m.seq for m in box.pending(limit=5)])
    with Outbox(cfg) as box:
        pending = box.pending(limit=100)
        stats = box.stats()
    assert [int(m.message.payload[:8]) for m in pending] == list(range(5, 20))
    assert (stats.depth, stats.delivered, stats.bytes) == (15, 5, 15 * 100)


def test_the_same_message_is_stored_once(tmp_path: Path) -> None:
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box:
        box.put(_msg(1))
        box.put(_msg(1))
        assert box.stats().depth == 1


def test_full_outbox_drops_oldest_lowest_severity_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)
    cfg = OutboxConfig(path=tmp_path / "o.sqlite", max_messages=4)
    with Outbox(cfg) as box, caplog.at_level(logging.WARNING, logger="agent"):
        for n, rank in [(0, 2), (1, 0), (2, 1), (3, 0)]:
            box.put(_msg(n, rank))
        assert box.put(_msg(4, 3))  # evicts n=1 (Minor, oldest)
        assert box.put(_msg(5, 1))  # evicts n=3 (the other Minor)
        assert not box.put(_msg(6, 0))  # a Minor into Moderate+: the newcomer is dropped
        kept = [int(m.message.payload[:8]) for m in box.pending()]
        stats = box.stats()
    assert kept == [0, 2, 4, 5]
    assert stats.dropped == 3 and stats.depth == 4
    assert sum("event=outbox_dropped" in r.getMessage() for r in caplog.records) == 3


def test_a_newcomer_that_cannot_fit_evicts_nothing(tmp_path: Path) -> None:
    # Minor 1 kB + Severe 9 kB fill 10 kB; a Moderate 2 kB would need the Severe one gone,
    # which outranks it: the Moderate is the one dropped, and the Minor stays.
    cfg = OutboxConfig(path=tmp_path / "o.sqlite", max_bytes=10_000)
    with Outbox(cfg) as box:
        assert box.put(_msg(0, rank=0, size=1000))
        assert box.put(_msg(1, rank=2, size=9000))
        assert not box.put(_msg(2, rank=1, size=2000))
        kept = [int(m.message.payload[:8]) for m in box.pending()]
        stats = box.stats()
    assert kept == [0, 1]
    assert (stats.dropped, stats.depth, stats.bytes) == (1, 2, 10_000)


def test_eviction_takes_as_many_victims_as_the_newcomer_needs(tmp_path: Path) -> None:
    cfg = OutboxConfig(path=tmp_path / "o.sqlite", max_bytes=10_000)
    with Outbox(cfg) as box:
        for n in range(5):
            assert box.put(_msg(n, rank=0, size=2000))
        assert box.put(_msg(9, rank=3, size=5000))  # needs three Minor ones gone
        kept = [int(m.message.payload[:8]) for m in box.pending()]
        stats = box.stats()
    assert kept == [3, 4, 9]
    assert (stats.dropped, stats.bytes) == (3, 9000)


def test_byte_bound_and_oversized_payloads(tmp_path: Path) -> None:
    cfg = OutboxConfig(path=tmp_path / "o.sqlite", max_bytes=10_000)
    with Outbox(cfg) as box:
        assert not box.put(_msg(0, size=10_001))
        for n in range(1, 13):
            box.put(_msg(n, size=1000))
        stats = box.stats()
    assert stats.bytes <= 10_000 and stats.depth == 10 and stats.dropped == 3


def test_expired_messages_are_dropped_not_sent(tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(seconds=120)
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box:
        box.put(_msg(0, expiry_s=60, created=old))
        box.put(_msg(1, expiry_s=600, created=old))
        assert [int(m.message.payload[:8]) for m in box.pending()] == [1]
        assert box.stats().expired == 1


def test_rejected_messages_are_kept_aside_and_can_be_requeued(tmp_path: Path) -> None:
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box:
        box.put(_msg(0))
        box.reject(box.pending()[0].seq, 0x87, "Not authorized")
        assert box.stats().depth == 0 and box.stats().rejected == 1 and box.stats().delivered == 0
        [(msg, code, _)] = box.rejected()
        assert code == 0x87 and msg.payload == _msg(0).payload
        assert box.requeue_rejected() == 1
        assert box.stats().depth == 1 and box.rejected() == []


def test_concurrent_producers_lose_nothing(tmp_path: Path) -> None:
    with Outbox(OutboxConfig(path=tmp_path / "o.sqlite")) as box:
        threads = [
            threading.Thread(target=lambda k=k: [box.put(_msg(k * 100 + i)) for i in range(25)]) for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert box.stats().depth == 100
        assert box.wait_for_work(0, 0.01)
