"""Counters a frame source exposes, as a frozen snapshot."""

from __future__ import annotations

__all__ = ["SourceStats"]

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceStats:
    """What a source has done so far.

    Attributes:
        available: whether the source is currently delivering frames.
        frames_read: frames decoded successfully.
        frames_dropped: decoded frames the consumer could not take because it
            was still busy past the time its own detect rate had it due (the
            box is too slow); a replay never drops (see frames_rate_skipped).
        frames_damaged: frames the decoder failed on or returned malformed
            (wrong size or type) and that were skipped.
        reconnects: successful re-opens after a failure (live only).
        frames_rate_skipped: decoded frames left out by design because the
            consumer's detect rate is below the stream's rate (live: replaced
            by a newer frame before the consumer was due; replay: subsampled).
        reader_cpu_s: CPU time of the reader thread (grabbing and decoding) so far
            (live only; 0 where the consumer's own thread decodes).
    """

    available: bool
    frames_read: int
    frames_dropped: int
    frames_damaged: int
    reconnects: int
    frames_rate_skipped: int = 0
    reader_cpu_s: float = 0.0
