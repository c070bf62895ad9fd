"""Batching across cameras: does one inference call over N frames beat N calls of one?

Every shipped model declares a batch of exactly 1. For each model this
benchmark makes a copy whose batch dimension is symbolic: the input's and
outputs' first dimension named `batch`, and every Reshape whose target shape
is a constant starting with 1 (YOLOX flattens its heads to `[1, 85, -1]`)
told to copy the batch from its input instead (`0`). The copy is accepted
only if a batch of 4 real frames gives the same outputs as 4 calls of one.
Then, on real frames of vtest.avi letterboxed by the product's
`Preprocessor`, ONNX Runtime runs (the detector's settings: 2 intra-op
threads, no spinning) for a fixed time per variant: the original file at
batch 1, the copy at batch 1, 2 and 4; variants interleaved over the
repeats, so a busy spell of a shared machine hits all of them. Reported:
frames per second and wall and CPU (user + system of this process) ms per
frame, median over the repeats.

    python -m benchmarks.bench_batching [--quick] [--models yolox-nano-416] [--seconds 4] [--repeats 3]
"""

from __future__ import annotations

__all__ = ["batchable_copy", "collect", "main"]

import argparse
import os
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from agent.detection.model_store import resolve_model  # noqa: E402
from agent.detection.preprocess import Preprocessor  # noqa: E402
from agent.sources import FileReplay  # noqa: E402
from benchmarks.report import Section, Table, print_section  # noqa: E402

ASSETS = (REPO / ".." / "shared" / "assets").resolve()
DEFAULT_MODELS = ("yolox-nano-416", "picodet-s-416", "nanodet-m-320")
BATCHES = (1, 2, 4)


def batchable_copy(path: Path) -> tuple[bytes | None, str]:
    """The model with a symbolic batch dimension, or None and why it cannot have one."""
    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    edited = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]]).copy()
        if shape.ndim == 1 and len(shape) > 1 and shape[0] == 1:
            shape[0] = 0  # 0: copy the input's dimension (allowzero is off in these exports)
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
            edited += 1
    for value in (*graph.input, *graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del graph.value_info[:]  # inferred shapes say batch 1; ONNX Runtime infers them again
    data = model.SerializeToString()
    try:
        onnx.checker.check_model(model)
        sess = _session(data)
        single = _session(str(path))
        rng = np.random.default_rng(0)
        name = single.get_inputs()[0].name
        h, w = (int(d) if isinstance(d, int) else 416 for d in single.get_inputs()[0].shape[2:])
        x = rng.uniform(0, 255, (4, 3, h, w)).astype(np.float32)
        batched = sess.run(None, {name: x})
        ones = [single.run(None, {name: x[i : i + 1]}) for i in range(4)]
    except Exception as err:  # noqa: BLE001 - any failure means "not batchable", said in the table
        return None, f"does not run at batch 4 ({type(err).__name__}; {edited} Reshape edited)"
    for k, out in enumerate(batched):
        if not np.allclose(out, np.concatenate([o[k] for o in ones]), atol=1e-4, rtol=1e-4):
            return None, f"batch 4 differs from 4 calls of one (output {k}; {edited} Reshape edited)"
    return data, f"yes ({edited} Reshape edited)"


def _session(model: str | bytes, threads: int = 2) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _tensors(name: str, count: int) -> np.ndarray:
    """`count` real vtest.avi frames as the product's detector feeds them, (count, 3, H, W)."""
    spec, _ = resolve_model(name)
    pre = Preprocessor(spec, spec.input_size_hw)
    out = []
    for frame in islice(FileReplay("bench", ASSETS / "videos" / "vtest.avi"), 0, 40 * count, 40):
        pre.update(frame.image_bgr)
        out.append(pre.tensor[0].copy())
    return np.stack(out)


def _measure(sess: ort.InferenceSession, frames: np.ndarray, batch: int, seconds: float) -> tuple[float, float, float]:
    """(frames/s, wall ms per frame, CPU ms per frame) running `batch` frames per call for `seconds`."""
    name = sess.get_inputs()[0].name
    calls = [np.ascontiguousarray(frames[i : i + batch]) for i in range(0, len(frames) - batch + 1, batch)]
    for x in calls[:2]:
        sess.run(None, {name: x})
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        sess.run(None, {name: calls[(n // batch) % len(calls)]})
        n += batch
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, wall / n * 1e3, cpu / n * 1e3


def collect(
    quick: bool = False,
    models: tuple[str, ...] = DEFAULT_MODELS,
    seconds: float | None = None,
    repeats: int | None = None,
) -> Section:
    """Batch 1 vs 2 and 4 per model: frames/s and CPU per frame."""
    seconds = seconds or (1.5 if quick else 4.0)
    repeats = repeats or (1 if quick else 3)
    load_before = os.getloadavg()[0]
    rows: list[tuple[object, ...]] = []
    support: list[tuple[object, ...]] = []
    headline: list[tuple[str, str]] = []
    for name in models:
        _, path = resolve_model(name)
        data, why = batchable_copy(path)
        support.append((name, why))
        if data is None:
            continue
        frames = _tensors(name, 8)
        variants = [("original file", 1, _session(str(path)))] + [
            ("symbolic batch", b, _session(data)) for b in BATCHES
        ]
        samples: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
        for _ in range(repeats):
            for label, batch, sess in variants:
                samples.setdefault((label, batch), []).append(_measure(sess, frames, batch, seconds))
        base = statistics.median(s[2] for s in samples[("original file", 1)])
        for (label, batch), runs in samples.items():
            fps, wall, cpu = (statistics.median(r[k] for r in runs) for k in range(3))
            rows.append((name, label, batch, fps, wall, cpu, cpu / base))
        best = min((r for r in rows if r[0] == name and r[1] == "symbolic batch"), key=lambda r: float(r[5]))  # type: ignore[arg-type]
        headline.append(
            (f"{name} batch {best[2]} vs original batch 1", f"CPU ms/frame {best[5]:.2f} vs {base:.2f} ({best[6]:.0%})")
        )
    tables = (
        Table("Symbolic batch dimension: does the model run at batch N?", ("model", "batchable"), tuple(support)),
        Table(
            f"Inference only, 2 threads, {seconds:g} s per variant, median of {repeats} interleaved repeats",
            ("model", "file", "batch", "frames/s", "wall ms/frame", "CPU ms/frame", "CPU vs original batch 1"),
            tuple(rows),
            note=f"Load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(a shared box: compare rows of one run). CPU is this process's user + system time.",
        ),
    )
    return Section("batching", "Batching across cameras: batch 1 vs N", tables, headline=tuple(headline))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s per variant, one repeat")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    print_section(collect(args.quick, tuple(m for m in args.models.split(",") if m), args.seconds, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
