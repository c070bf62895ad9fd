"""Decoding ahead on a reader thread: same frames in the same order, errors where they happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from agent.errors import SourceError
from agent.sources import FileReplay
from agent.sources.prefetch import Prefetched

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_prefetched_frames_are_the_replays_frames_in_order(vtest_avi: Path) -> None:
    inline = list(islice(FileReplay("gate", vtest_avi, detect_fps=4.0, start_utc=START), 40))
    with Prefetched(FileReplay("gate", vtest_avi, detect_fps=4.0, start_utc=START)) as frames:
        ahead = list(islice(frames, 40))
    assert [f.frame_index for f in ahead] == [f.frame_index for f in inline]
    assert [f.ts_utc for f in ahead] == [f.ts_utc for f in inline]
    assert all(np.array_equal(a.image_bgr, b.image_bgr) for a, b in zip(ahead, inline, strict=True))


def test_an_unopenable_file_raises_to_the_consumer(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with Prefetched(FileReplay("gate", broken)) as frames, pytest.raises(SourceError, match="gate"):
        next(iter(frames))


def test_an_error_mid_source_comes_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield from range(5)
        raise SourceError("camera 'x': stream broke at item 5")

    seen: list[int] = []
    with Prefetched(source(), depth=2) as items, pytest.raises(SourceError, match="item 5"):
        for item in items:
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_leaving_early_stops_the_reader() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    with Prefetched(endless(), depth=3, name="test.prefetch") as items:
        first = list(islice(items, 4))
    assert first == [0, 1, 2, 3]
    assert not any(t.name == "test.prefetch" for t in threading.enumerate())
    # It read only as far ahead as it was allowed: the 4 taken, 3 queued, one in hand.
    assert len(produced) <= 4 + 3 + 1


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        Prefetched(range(3), depth=0)
