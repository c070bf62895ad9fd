"""`edge-agent warmup`: compile every Numba kernel before the first start.

Run once at install time (as the service user, with the service's
`NUMBA_CACHE_DIR` or `runtime.numba_cache_dir`). It first compiles the
kernels ahead of time into one extension module in that folder
(`agent.kernels.build`, in a child process), which the agent then loads
without importing Numba at all; where that fails (no C compiler) it says so
and the agent runs the kernels in Numba's JIT. Then it loads the configured
detector and runs every camera's pipeline over synthetic frames with a
moving object, which touches the pre- and post-processing, tracking, filter
and rule kernels: a check of the compiled module, or, in the JIT, the
compilation into Numba's cache, so no start spends seconds compiling.
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import subprocess
import sys
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
        help="compile the Numba kernels ahead of time (run once at install time)",
        description=(
            "Compile every Numba kernel ahead of time into one extension module in the cache folder "
            "(NUMBA_CACHE_DIR, else runtime.numba_cache_dir, else beside the package), then load the "
            "detector and run each camera's pipeline over synthetic frames. Without a C compiler the "
            "kernels are compiled into Numba's JIT cache instead. Prints how long it took."
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


def _compile_ahead_of_time() -> bool:
    # A child process: the build imports the kernel modules in JIT mode, and this process
    # has imported them already (the compiled module it builds is for the next start).
    done = subprocess.run([sys.executable, "-m", "agent.kernels.build"], check=False)
    return done.returncode == 0


def _warmup(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    config = load_config(args.config, args.overrides)
    compiled = _compile_ahead_of_time()
    tb = time.perf_counter()
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
    kernels = "compiled ahead of time" if compiled else "left to Numba's JIT (see above)"
    print(
        f"warmup: kernels {kernels} in {tb - t0:.2f} s, detector ready in {t1 - tb:.2f} s, "
        f"pipelines in {t2 - t1:.2f} s; numba cache: {effective_cache_dir()}"
    )
    return 0
