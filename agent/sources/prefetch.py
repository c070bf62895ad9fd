"""Decoding a file ahead of its consumer on a reader thread (replays run as fast as the box allows).

A replay that decodes in line leaves the second core idle while it decodes
and the detector waits. `Prefetched` decodes on its own named thread, a few
frames ahead (FFmpeg lets go of the GIL while it decodes), so decoding
overlaps inference. Frames come out in the order the source gives them, so
a replay's output does not change; an error the source raises (a file that
cannot be opened, no decodable frame) is raised to the consumer where the
frame would have come. Leaving early (a frame limit) stops the thread: a
`Prefetched` is a context manager, and the reader never blocks longer than
`_PUT_WAIT_S` on a consumer that has gone.

Measured on vtest.avi with YOLOX-Nano 416 on two cores
(`benchmarks.pipeline_overlap`): see the benchmark report.
"""

from __future__ import annotations

__all__ = ["Prefetched"]

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
_PUT_WAIT_S = 0.1


class _End:
    """The source is done; `error` is what it raised (None: it ended)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Prefetched(Generic[T]):
    """Iterate over `source` while a reader thread fills up to `depth` items ahead.

    Args:
        source: what to read (its iteration runs on the reader thread).
        depth: items decoded ahead of the consumer (>= 1).
        name: the reader thread's name (logs, profilers).
    """

    def __init__(self, source: Iterable[T], *, depth: int = 2, name: str = "prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._source = source
        self._ready: queue.Queue[T | _End] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=name, daemon=True)
        self._started = False

    def _read(self) -> None:
        end = _End(None)
        try:
            for item in self._source:
                if not self._put(item):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, who raises it
            end = _End(err)
        self._put(end)

    def _put(self, item: T | _End) -> bool:
        """Queue `item` unless the consumer has left; False when it has."""
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=_PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._ready.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        """Stop the reader (it finishes the item it is decoding) and wait for it."""
        self._stop.set()
        if self._started:
            self._thread.join()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
