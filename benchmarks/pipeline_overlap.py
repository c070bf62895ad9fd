"""One camera, gating off: pipeline fps against inference-only fps, decoding in line or overlapped.

The product's `CameraPipeline` (built by `agent.runtime.assembly` from
tests/evaluation/vtest_rules.yaml, motion mode `always`, YOLOX-Nano 416)
runs over the same frames of vtest.avi as fast as it can, its frames read by
`FileReplay` either in line (decode, then process) or on the reader thread
`replay_file` uses (`agent.sources.prefetch`), which decodes up to two
frames ahead while the pipeline works (FFmpeg lets go of the GIL while it
decodes). Inference
only is ONNX Runtime alone on the product's preprocessed tensors
(`benchmarks.bench_pipeline.run_inference_only`). The three are interleaved
over the repeats, so a busy spell of a shared box hits all of them; the
ratio is of medians from the same run.

    python -m benchmarks.pipeline_overlap [--frames 400] [--repeats 3]
"""

from __future__ import annotations

__all__ = ["collect", "pipeline_fps"]

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

from agent.runtime.assembly import camera_pipeline, detector_from_config, tracker_from_config
from agent.sources import FileReplay
from agent.sources.prefetch import Prefetched
from agent.values.frames import Frame
from benchmarks.bench_pipeline import ASSETS, run_inference_only, site_config
from benchmarks.report import Section, Table, print_section


def pipeline_fps(clip: Path, frames_wanted: int, key_dir: Path, *, prefetch: bool) -> tuple[float, float]:
    """(frames/s, CPU ms per frame) of the gating-off pipeline over `frames_wanted` frames, decoding included
    (on the product's reader thread, `agent.sources.prefetch.Prefetched`, as `replay_file` does, or in line)."""
    config, camera = site_config("always", key_dir)
    detector = detector_from_config(config.detector, tracker=config.tracker)
    pipeline = camera_pipeline(
        camera, config.site, detector, tracker_from_config(config.tracker, detector=config.detector), status="Test"
    )
    source: Iterable[Frame] = FileReplay("bench", clip)
    with Prefetched(source, name="bench.reader") if prefetch else nullcontext(source) as frames:
        replay = iter(frames)
        pipeline.process(next(replay))  # builds the per-size stages: left out, as a service's first frame
        n = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for frame in replay:
            pipeline.process(frame)
            n += 1
            if n == frames_wanted:
                break
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    detector.close()
    return n / wall, cpu / n * 1e3


def collect(quick: bool = False, frames: int | None = None, repeats: int | None = None) -> Section:
    frames = frames or (120 if quick else 400)
    repeats = repeats or (1 if quick else 3)
    clip = ASSETS / "videos" / "vtest.avi"
    load = [os.getloadavg()[0]]
    inline, ahead, infer = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp)
        for _ in range(repeats):
            inline.append(pipeline_fps(clip, frames, key_dir, prefetch=False))
            ahead.append(pipeline_fps(clip, frames, key_dir, prefetch=True))
            infer.append(1e3 / run_inference_only(clip, frames, key_dir).mean_ms("inference"))
    load.append(os.getloadavg()[0])
    inf_fps = statistics.median(infer)
    rows: list[tuple[str, float, float | None, float]] = [
        ("inference only (ONNX Runtime on prepared tensors)", inf_fps, None, 1.0)
    ]
    for label, runs in (
        ("pipeline, decoding in line", inline),
        ("pipeline, decoding on a reader thread (replay_file)", ahead),
    ):
        fps = statistics.median(r[0] for r in runs)
        rows.append((label, fps, statistics.median(r[1] for r in runs), fps / inf_fps))
    table = Table(
        "One camera, gating off, vtest.avi, YOLOX-Nano 416: pipeline fps / inference-only fps (target >= 0.90)",
        ("variant", "frames/s", "CPU ms/frame", "ratio to inference only"),
        tuple(rows),
        note=f"{frames} frames per pass, median of {repeats} interleaved passes; load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after on {os.cpu_count()} cores.",
        float_digits=3,
    )
    best = max(r[3] for r in rows[1:])
    return Section(
        "overlap",
        "Single camera: pipeline vs inference-only fps",
        (table,),
        headline=(("single camera pipeline / inference-only fps (gating off)", f"{best:.2f}"),),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--repeats", type=int)
    args = parser.parse_args()
    os.environ.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    print_section(collect(args.quick, args.frames, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
