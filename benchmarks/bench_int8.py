"""INT8 benchmark: float vs static-quantized (QDQ) detector, ms per inference and person AP50.

Run from the repository root with the shared assets beside it:

    EDGE_AGENT_MODEL_PATH=../shared/assets/models python -m benchmarks.bench_int8 [--quick] [--models a,b]

Each model is quantized with `agent.detection.quantize` (calibrated on frames of
vtest.avi, written to a throw-away user cache), then both copies are timed
(ONNX Runtime inference only, 1 thread and the detector's default 2 threads)
and scored: person AP50 on vtest.avi against the PETS09-S2L1 ground truth.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.detection import DetectorOptions, ObjectDetector  # noqa: E402
from agent.detection.model_store import resolve_model  # noqa: E402
from agent.detection.quantize import quantize_model  # noqa: E402
from benchmarks.bench_detection import ASSETS, CLIPS, person_ap, read_frames, spread  # noqa: E402
from benchmarks.report import Section, Table, print_section  # noqa: E402

DEFAULT_MODELS = ("yolox-nano-416", "person-light", "picodet-s-416")


@contextmanager
def throwaway_cache() -> Iterator[Path]:
    """Point the user model cache at a temporary folder for the duration."""
    before = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp
        try:
            yield Path(tmp)
        finally:
            if before is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = before


def inference_ms(name: str, frames: list[tuple[int, np.ndarray]], repeats: int, threads: int) -> list[float]:
    """ONNX Runtime inference ms per call on vtest frames (pre- and post-processing excluded)."""
    opts = DetectorOptions(classes=("person",), intra_op_threads=threads)
    samples = []
    with ObjectDetector.from_model(name, opts) as det:
        for i in range(repeats):
            det.detect(frames[i % len(frames)][1])
            samples.append(det.last_timings.inference_ms)
    return samples


def collect(quick: bool = False, models: tuple[str, ...] = DEFAULT_MODELS, repeats: int | None = None) -> Section:
    """Float vs INT8 speed and person AP50 for each model."""
    repeats = repeats or (20 if quick else 100)
    calib = 8 if quick else 32
    every = 25 if quick else 5
    vtest = read_frames(every)
    rows = []
    with throwaway_cache():
        for base in models:
            q8 = quantize_model(base, ASSETS / CLIPS["vtest"][0], frames=calib).name
            side = resolve_model(base)[0].input_size_hw[0]
            for label, name in (("float", base), ("int8", q8)):
                one = inference_ms(name, vtest, repeats, 1)
                two = inference_ms(name, vtest, repeats, 2)
                rows.append((name, label, spread(one), spread(two), person_ap(name, side, "vtest", vtest)))
    table = Table(
        f"Float vs INT8 (QDQ): inference ms, median (p10-p90) over {repeats} vtest.avi frames; person AP50",
        ("model", "weights", "inference ms, 1 thread", "inference ms, 2 threads", f"AP50 vtest ({len(vtest)} fr)"),
        tuple(rows),
        float_digits=3,
        note=f"INT8 copies calibrated on {calib} frames spread over vtest.avi (the clip scored: a site "
        "calibrates on its own camera). Inference only (ONNX Runtime session run); 2 threads is the "
        f"detector's default. AP50 at score >= 0.05, person class, one frame in {every}, against the "
        "PETS09-S2L1 ground truth.",
    )
    by = {(r[0], r[1]): r for r in rows}
    headline = tuple(
        (
            f"{base} int8 vs float",
            f"AP50 {by[(base + '-int8', 'int8')][4]:.3f} vs {by[(base, 'float')][4]:.3f}; "
            f"1-thread ms {by[(base + '-int8', 'int8')][2].split()[0]} vs {by[(base, 'float')][2].split()[0]}",
        )
        for base in models
        if (base + "-int8", "int8") in by
    )
    return Section("int8", "INT8 models: float vs static-quantized speed and person AP50", (table,), headline=headline)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subsets: a smoke run, not numbers to quote")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated manifest models")
    parser.add_argument("--repeats", type=int, default=None, help="timed inferences per model and thread count")
    args = parser.parse_args()
    os.environ.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    models = tuple(m for m in args.models.split(",") if m)
    print_section(collect(args.quick, models, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
