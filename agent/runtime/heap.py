"""The process's C heap: large buffers go back to the system when they are freed.

Every camera decodes, copies and resizes frames of a megabyte or more on
its own threads (FFmpeg, OpenCV, NumPy). glibc's malloc serves a block that
large with its own mapping at first, but after the first such block is freed
it raises that threshold (up to 32 MB) and serves the next ones from its
per-thread heaps, where they fragment: measured on four cameras looping the
real clips (benchmarks/bench_soak.py), resident memory grew from 316 MB to
350 MB in the first three minutes; with the threshold fixed at 256 KiB the
same run went from 307 MB to 319 MB, with the same inference times. The
price is one mmap and munmap per frame-sized buffer, tens of microseconds
against a frame's 15-20 ms.

Only glibc has `mallopt`; elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

__all__ = ["LARGE_BLOCK_BYTES", "map_large_blocks"]

import ctypes
import ctypes.util
import logging

from agent.logs import log_event

_log = logging.getLogger("agent.runtime.heap")
LARGE_BLOCK_BYTES = 256 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def map_large_blocks(threshold_bytes: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve blocks of `threshold_bytes` and more from their own mappings, returned when freed.

    Call it before the camera threads start. Returns whether the C library took the setting.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    log_event(_log, "heap_large_blocks_mapped", threshold_bytes=threshold_bytes, applied=applied)
    return applied
