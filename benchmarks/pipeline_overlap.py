"""One camera, gating off: pipeline fps against inference-only fps, with and without overlap.

The product's `CameraPipeline` (built by `agent.runtime.assembly` from
tests/evaluation/vtest_rules.yaml, motion mode `always`, YOLOX-Nano 416)
runs over the same frames of vtest.avi as fast as it can, in three shapes:
decoding in line (decode, then process); decoding on the reader thread
(`agent.sources.prefetch`), up to two frames ahead; and what `replay_file`
does, the reader thread plus the motion gate and detector on a thread of
their own (`agent.runtime.clip_replay.looked_frames`), up to two frames
ahead of tracking and rules. FFmpeg and ONNX Runtime let go of the GIL
while they work, so the threads overlap. Inference only is ONNX Runtime
alone on the product's preprocessed tensors
(`benchmarks.bench_pipeline.run_inference_only`). Each is run with one and
with two ONNX Runtime intra-op threads, and the ratio is of medians at the
same setting; all of them are interleaved over the repeats, so a busy spell
of a shared box hits all of them.

    python -m benchmarks.pipeline_overlap [--frames 400] [--repeats 3]
"""

from __future__ import annotations

__all__ = ["SHAPES", "collect", "pipeline_fps"]

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

from agent.runtime.assembly import camera_pipeline, detector_from_config, tracker_from_config
from agent.runtime.clip_replay import looked_frames
from agent.runtime.pipeline import CameraPipeline, LookedFrame
from agent.sources import FileReplay
from agent.sources.prefetch import Prefetched
from agent.values.frames import Frame
from benchmarks.bench_pipeline import ASSETS, run_inference_only, site_config
from benchmarks.report import Section, Table, print_section

# How the frames reach the pipeline: label -> (decode on the reader thread, detect on its own thread).
SHAPES: dict[str, tuple[bool, bool]] = {
    "decoding in line": (False, False),
    "decoding on a reader thread": (True, False),
    "reader thread + detector thread (replay_file)": (True, True),
}
THREADS = (1, 2)


def _looked(
    stack: ExitStack, pipeline: CameraPipeline, frames: Iterable[Frame], *, reader: bool, detector: bool
) -> Iterator[LookedFrame]:
    if reader:
        frames = stack.enter_context(Prefetched(frames, name="bench.reader"))
    if detector:
        return iter(stack.enter_context(looked_frames(pipeline, frames, name="bench")))
    return (pipeline.look(frame) for frame in frames)


def pipeline_fps(
    clip: Path, frames_wanted: int, key_dir: Path, *, reader: bool, detector: bool, threads: int
) -> tuple[float, float]:
    """(frames/s, CPU ms per frame) of the gating-off pipeline over `frames_wanted` frames, decoding included."""
    config, camera = site_config("always", key_dir, threads)
    onnx = detector_from_config(config.detector, tracker=config.tracker)
    pipeline = camera_pipeline(
        camera, config.site, onnx, tracker_from_config(config.tracker, detector=config.detector), status="Test"
    )
    with ExitStack() as stack:
        looked = _looked(stack, pipeline, FileReplay("bench", clip), reader=reader, detector=detector)
        pipeline.follow(next(looked))  # builds the per-size stages: left out, as a service's first frame
        n = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for seen in looked:
            pipeline.follow(seen)
            n += 1
            if n == frames_wanted:
                break
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    onnx.close()
    return n / wall, cpu / n * 1e3


def collect(quick: bool = False, frames: int | None = None, repeats: int | None = None) -> Section:
    frames = frames or (120 if quick else 400)
    repeats = repeats or (1 if quick else 3)
    clip = ASSETS / "videos" / "vtest.avi"
    load = [os.getloadavg()[0]]
    runs: dict[tuple[int, str], list[tuple[float, float]]] = {}
    infer: dict[int, list[float]] = {t: [] for t in THREADS}
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp)
        for _ in range(repeats):
            for threads in THREADS:
                for label, (reader, detector) in SHAPES.items():
                    run = pipeline_fps(clip, frames, key_dir, reader=reader, detector=detector, threads=threads)
                    runs.setdefault((threads, label), []).append(run)
                ms = run_inference_only(clip, frames, key_dir, threads).mean_ms("inference")
                infer[threads].append(1e3 / ms)
    load.append(os.getloadavg()[0])
    rows: list[tuple[int, str, float, float | None, float]] = []
    ratios: dict[int, float] = {}
    for threads in THREADS:
        inf_fps = statistics.median(infer[threads])
        rows.append((threads, "inference only (ONNX Runtime on prepared tensors)", inf_fps, None, 1.0))
        for label in SHAPES:
            fps = statistics.median(r[0] for r in runs[(threads, label)])
            cpu = statistics.median(r[1] for r in runs[(threads, label)])
            rows.append((threads, f"pipeline, {label}", fps, cpu, fps / inf_fps))
        ratios[threads] = rows[-1][4]
    table = Table(
        "One camera, gating off, vtest.avi, YOLOX-Nano 416: pipeline fps / inference-only fps (target >= 0.90)",
        ("intra-op threads", "variant", "frames/s", "CPU ms/frame", "ratio to inference only, same threads"),
        tuple(rows),
        note=f"{frames} frames per pass, median of {repeats} interleaved passes; load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after on {os.cpu_count()} cores.",
        float_digits=3,
    )
    return Section(
        "overlap",
        "Single camera: pipeline vs inference-only fps",
        (table,),
        headline=tuple(
            (
                f"single camera pipeline / inference-only fps (gating off, {t} intra-op thread{'s' * (t > 1)})",
                f"{r:.2f}",
            )
            for t, r in ratios.items()
        ),
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
