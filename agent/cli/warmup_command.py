"""`edge-agent warmup`: compile every Numba kernel into the cache before the first start.

Run once at install time (as the service user, with the service's
`NUMBA_CACHE_DIR` or `runtime.numba_cache_dir`) so the agent's first start
does not spend seconds compiling. It loads the configured detector and runs
every camera's pipeline over synthetic frames with a moving object, which
touches the pre- and post-processing, tracking, filter and rule kernels.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from agent.cli.options import add_config_options
from agent.config import load_config
from agent.runtime.numba_cache import effective_cache_dir
from agent.values.frames import Frame

_FRAMES = 12


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "warmup",
        help="compile the Numba kernels into the cache (run once at install time)",
        description=(
            "Load the detector and run each camera's pipeline over synthetic frames so every "
            "Numba kernel is compiled into the cache folder (NUMBA_CACHE_DIR, else "
            "runtime.numba_cache_dir). Prints how long it took."
        ),
    )
    add_config_options(parser)
    parser.set_defaults(handler=_warmup)


def _synthetic_frames(camera_id: str, wh: tuple[int, int]) -> list[Frame]:
    w, h = wh
    start = datetime.now(UTC)
    frames = []
    for i in range(_FRAMES):
        image = np.full((h, w, 3), 90, np.uint8)
        x = 40 + i * 12
        image[h // 3 : h // 3 + 120, x : x + 50] = (30, 60, 200)  # a moving block, so motion fires
        frames.append(
            Frame(
                camera_id=camera_id,
                frame_index=i,
                image_bgr=image,
                ts_utc=start + timedelta(seconds=i / 5),
                ts_monotonic_s=i / 5,
            )
        )
    return frames


def _warmup(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    config = load_config(args.config, args.overrides)
    from agent.runtime.assembly import camera_pipeline, detector_from_config, tracker_from_config

    detector = detector_from_config(config.detector, tracker=config.tracker)
    t1 = time.perf_counter()
    for camera in config.cameras:
        pipeline = camera_pipeline(
            camera, config.site, detector, tracker_from_config(config.tracker, detector=config.detector), status="Test"
        )
        for frame in _synthetic_frames(camera.id, (640, 360)):
            pipeline.process(frame)
        pipeline.finish()
    t2 = time.perf_counter()
    print(
        f"warmup: detector ready in {t1 - t0:.2f} s, pipelines in {t2 - t1:.2f} s; numba cache: {effective_cache_dir()}"
    )
    return 0
