"""Cost of `edge-agent tune` against one plain replay of the same clip.

Runs a full replay (detector at the config's threshold, signing, routing),
then the tune path (one detection pass at the grid's lowest threshold, then
every grid point rerun from the cache) and prints wall and CPU seconds of
each and their ratio. CPU seconds (all threads) are the steadier number on a
shared machine. Run: `python benchmarks/bench_tune.py [--max-frames N]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from shutil import copy

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
sys.path[:0] = [str(REPO)]

from agent.config import load_config  # noqa: E402
from agent.evaluation.mot import read_mot  # noqa: E402
from agent.integrator.tune import TuneGrid, cache_detections, sweep  # noqa: E402
from agent.runtime.assembly import dispatcher_from_config  # noqa: E402
from agent.runtime.clip_replay import replay_file  # noqa: E402

START = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()
    clip = ASSETS / "videos" / "vtest.avi"
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "site.yaml"
        copy(REPO / "tests" / "evaluation" / "vtest_rules.yaml", config_path)
        config = load_config(config_path)
        camera = config.cameras[0]
        summary, replay_wall, replay_cpu = _timed(
            lambda: replay_file(
                config,
                camera,
                clip,
                dispatcher=dispatcher_from_config(config),
                start_utc=START,
                max_frames=args.max_frames,
            )
        )
        grid = TuneGrid((0.25, 0.35, 0.45, 0.55), (0.5, 1.0, 2.0))
        gt = read_mot(ASSETS / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")
        cache, cache_wall, cache_cpu = _timed(
            lambda: cache_detections(config, camera, clip, min_score=0.25, start_utc=START, max_frames=args.max_frames)
        )
        points, sweep_wall, sweep_cpu = _timed(lambda: sweep(cache, config, camera, grid, gt))
    tune_wall, tune_cpu = cache_wall + sweep_wall, cache_cpu + sweep_cpu
    print(
        f"clip vtest.avi, {summary.frames_processed} frames, grid {len(points)} points (4 scores x 3 factors, with gt)"
    )
    print(f"{'':24}{'wall s':>10}{'cpu s':>10}")
    print(f"{'replay':24}{replay_wall:>10.1f}{replay_cpu:>10.1f}")
    print(f"{'tune: detection pass':24}{cache_wall:>10.1f}{cache_cpu:>10.1f}")
    print(f"{'tune: sweep':24}{sweep_wall:>10.1f}{sweep_cpu:>10.1f}")
    print(f"{'tune / replay':24}{tune_wall / replay_wall:>10.2f}{tune_cpu / replay_cpu:>10.2f}")


if __name__ == "__main__":
    main()
