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
        frames_dropped: decoded frames replaced by a newer one before the
            consumer took them (live), or skipped by subsampling (replay).
        frames_damaged: frames the decoder failed on or returned malformed
            (wrong size or type) and that were skipped.
        reconnects: successful re-opens after a failure (live only).
    """

    available: bool
    frames_read: int
    frames_dropped: int
    frames_damaged: int
    reconnects: int
