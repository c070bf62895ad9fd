"""The durable memory of accepted alerts: kept across a reopen, purged by age, bounded by count."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.agency.seen_store import SeenStore, SeenStoreError

NOW = datetime.now(UTC)


def test_an_accepted_alert_is_remembered_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "seen.sqlite"
    with SeenStore(path, window_s=86400) as store:
        assert store.remember("depot-north", "a-1", NOW)
        assert not store.remember("depot-north", "a-1", NOW)
    with SeenStore(path, window_s=86400) as store:
        assert store.contains("depot-north", "a-1")
        assert not store.contains("depot-south", "a-1"), "the same identifier from another site is another alert"
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_rows_older_than_the_window_plus_margin_are_purged_by_age(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "s.sqlite", window_s=3600, margin_s=600) as store:
        store.remember("s", "recent", NOW - timedelta(minutes=30))
        store.remember("s", "edge", NOW - timedelta(minutes=65))  # past the window, inside the margin
        store.remember("s", "old", NOW - timedelta(hours=2))
        assert store.purge(NOW) == 1
        assert [store.contains("s", a) for a in ("recent", "edge", "old")] == [True, True, False]


def test_old_rows_go_at_open_and_while_alerts_come_in(tmp_path: Path) -> None:
    # The store purges by the wall clock, so "now" is taken here, not when the module was imported.
    NOW = datetime.now(UTC)
    path = tmp_path / "s.sqlite"
    with SeenStore(path, window_s=60, margin_s=0, purge_every=3) as store:
        store.remember("s", "old", NOW - timedelta(hours=1))
        store.remember("s", "new-1", NOW)
        assert store.contains("s", "old")
        store.remember("s", "new-2", NOW)  # the third since the last purge
        assert not store.contains("s", "old") and len(store) == 2
    with SeenStore(path, window_s=60, margin_s=0) as store:
        store.remember("s", "old-again", NOW - timedelta(hours=1))
    with SeenStore(path, window_s=60, margin_s=0) as store:
        assert not store.contains("s", "old-again") and len(store) == 2


def test_a_flood_is_bounded_by_count_oldest_first(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "s.sqlite", window_s=86400, max_rows=3, purge_every=10_000) as store:
        for n in range(5):
            store.remember("s", f"a{n}", NOW + timedelta(seconds=n))
        store.purge(NOW)
        assert [store.contains("s", f"a{n}") for n in range(5)] == [False, False, True, True, True]


def test_an_unusable_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SeenStoreError, match=str(path)):
        SeenStore(path, window_s=60)
