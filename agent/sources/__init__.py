"""Frame sources: file replay (deterministic) and live cameras (reader thread).

A file is replayed with `FileReplay` (`edge-agent replay`/`detect`); cameras,
and files looped for demos, are read with `LiveSource`, which reconnects by
`Backoff` (re-exported from `agent.backoff`, the one retry policy).
"""

from __future__ import annotations

__all__ = [
    "Backoff",
    "CaptureTimeouts",
    "FileReplay",
    "LiveSource",
    "SourceSpec",
    "SourceStats",
    "parse_source",
]

from agent.backoff import Backoff
from agent.sources.capture import CaptureTimeouts
from agent.sources.file_replay import FileReplay
from agent.sources.live import LiveSource
from agent.sources.source_stats import SourceStats
from agent.sources.spec import SourceSpec, parse_source
