"""Every Numba kernel beside its NumPy reference and the library routine a user would call instead.

Inputs are real where the kernel sees real data (a vtest.avi frame, the
detectors' own raw outputs) and seeded random otherwise. Times are median
microseconds over repeated calls, measured in one run so the ratios are
taken under the same machine load. A second table runs the heavier kernels
in two threads at once: cameras call them from their own threads, which
run in parallel only while a kernel releases the GIL.

The kernels run as the agent would run them: compiled ahead of time when
`agent/kernels` finds the compiled module, else in Numba's JIT; the section
says which. `EDGE_AGENT_KERNELS=jit` measures the JIT for comparison.

    python -m benchmarks.bench_kernels [--quick]
    EDGE_AGENT_KERNELS=jit python -m benchmarks.bench_kernels [--quick]
"""

from __future__ import annotations

__all__ = ["KernelCase", "cases", "collect", "main"]

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from agent.detection import ObjectDetector, box_ops, decoding, preprocess
from agent.detection.model_store import resolve_model
from agent.kernels import kernel_status
from agent.rules import geometry
from agent.tracking import assignment
from benchmarks.report import Section, Table, print_section, spread

ASSETS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "assets").resolve()
Fn = Callable[[], object]


@dataclass(frozen=True, slots=True)
class KernelCase:
    """One kernel on one input: the Numba wrapper, its NumPy reference, and an optional library routine."""

    name: str
    numba: Fn
    numpy: Fn
    library_name: str = ""
    library: Fn | None = None


def time_us(fn: Fn, repeats: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def _frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(ASSETS / "videos" / "vtest.avi"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 400)
    ok, image = cap.read()
    cap.release()
    return image if ok else np.random.default_rng(0).integers(0, 255, (576, 768, 3), np.uint8)


def _boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xy = rng.uniform(0, 400, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 120, (n, 2))], 1).astype(np.float32)
    return boxes, rng.uniform(0.05, 1, n).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


def _raw_outputs(name: str, image: np.ndarray) -> tuple[object, list[np.ndarray]]:
    spec, path = resolve_model(name)
    with ObjectDetector(spec, path) as det:
        det._pre.update(image)  # the detector's real preallocated tensor
        return spec, det._session.run(det._pre.tensor)


def detection_cases(image: np.ndarray) -> list[KernelCase]:
    resized = cv2.resize(image, (416, 312))
    tensor = np.zeros((1, 3, 312, 416), np.float32)
    mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
    out = [
        KernelCase(
            "hwc->nchw float 416x312",
            lambda: preprocess.hwc_to_nchw_normalised(resized, tensor, "bgr", mean, std),
            lambda: preprocess.hwc_to_nchw_normalised_numpy(resized, tensor, "bgr", mean, std),
            "cv2.dnn.blobFromImage",
            lambda: cv2.dnn.blobFromImage(resized),
        )
    ]
    person = np.zeros(80, np.bool_)
    person[0] = True
    spec, yolox = _raw_outputs("yolox-nano-416", image)
    buf = decoding.CandidateBuffers(3549)
    out.append(
        KernelCase(
            "decode yolox 3549 anchors",
            lambda: decoding.decode_yolox(yolox[0], spec.strides, (416, 416), 0.05, person, buf),  # type: ignore[attr-defined]
            lambda: decoding.decode_yolox_numpy(yolox[0], spec.strides, (416, 416), 0.05, person),
        )
    )  # type: ignore[attr-defined]
    pspec, pout = _raw_outputs("picodet-s-416", image)
    gfl = (pout[:4], pout[4:], pspec.strides, (416, 416), 0.0, 0.05, person)  # type: ignore[attr-defined]
    gbuf = decoding.CandidateBuffers(3598)
    out.append(
        KernelCase(
            "decode gfl 3598 anchors",
            lambda: decoding.decode_gfl(*gfl, out=gbuf),
            lambda: decoding.decode_gfl_numpy(*gfl),
        )
    )
    rng = np.random.default_rng(0)
    v8 = np.concatenate([rng.uniform(0, 640, (1, 4, 8400)), rng.uniform(0, 1, (1, 80, 8400)) ** 4], 1).astype(
        np.float32
    )
    every, vbuf = np.ones(80, np.bool_), decoding.CandidateBuffers(8400)
    out.append(
        KernelCase(
            "decode yolov8 8400 anchors",
            lambda: decoding.decode_yolov8(v8, 0.25, every, vbuf),
            lambda: decoding.decode_yolov8_numpy(v8, 0.25, every),
        )
    )
    a, b = _boxes(rng, 60)[0], _boxes(rng, 80)[0]
    out.append(
        KernelCase(
            "detection iou 60x80",
            lambda: box_ops.iou_matrix(a, b),
            lambda: box_ops.iou_matrix_numpy(a, b),
            "supervision box_iou_batch",
            _sv_iou(a, b),
        )
    )
    for n in (100, 1000):
        boxes, score, cls = _boxes(rng, n)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        out.append(
            KernelCase(
                f"class-aware nms {n} boxes",
                _bind(box_ops.nms_class_aware, boxes, score, cls, 0.45),
                _bind(box_ops.nms_class_aware_numpy, boxes, score, cls, 0.45),
                "cv2.dnn.NMSBoxesBatched",
                _bind(cv2.dnn.NMSBoxesBatched, xywh, score, cls, 0.0, 0.45),
            )
        )
    return out


def _bind(fn: Callable[..., object], *args: object) -> Fn:
    return lambda: fn(*args)


def _sv_iou(a: np.ndarray, b: np.ndarray) -> Fn | None:
    try:
        from supervision.detection.utils import box_iou_batch
    except ImportError:
        try:
            from supervision import box_iou_batch  # type: ignore[no-redef]
        except ImportError:
            return None
    return lambda: box_iou_batch(a, b)


def tracking_and_rule_cases() -> list[KernelCase]:
    # The tracker's IoU is the detection iou kernel above.
    rng = np.random.default_rng(1)
    cost = rng.random((30, 30))
    from scipy.optimize import linear_sum_assignment

    out = [
        KernelCase(
            "linear assignment 30x30",
            _bind(assignment.linear_assignment, cost),
            _bind(assignment.linear_assignment_reference, cost),
            "scipy linear_sum_assignment",
            _bind(linear_sum_assignment, cost),
        )
    ]
    angles = np.sort(rng.uniform(0, 2 * np.pi, 8))
    poly = np.stack([400 + 150 * np.cos(angles), 300 + 150 * np.sin(angles)], axis=1)
    contour = poly.astype(np.float32).reshape(-1, 1, 2)
    p1, p2 = np.array([100.0, 50.0]), np.array([600.0, 500.0])
    for n in (20, 5000):
        pts = rng.uniform(0, 800, (n, 2))
        pts_list = [(float(x), float(y)) for x, y in pts]
        out.append(
            KernelCase(
                f"point in polygon {n} pts",
                _bind(geometry.points_in_polygon, pts, poly),
                _bind(geometry.points_in_polygon_reference, pts, poly),
                "cv2.pointPolygonTest per point",
                lambda pl=pts_list: [cv2.pointPolygonTest(contour, p, False) for p in pl],
            )
        )
        out.append(
            KernelCase(
                f"side of line {n} pts",
                _bind(geometry.side_of_line, pts, p1, p2),
                _bind(geometry.side_of_line_reference, pts, p1, p2),
            )
        )
    return out


def cases() -> list[KernelCase]:
    return detection_cases(_frame()) + tracking_and_rule_cases()


# The kernels long enough for two threads to overlap (short ones are mostly call overhead).
THREADED = (
    "hwc->nchw float 416x312",
    "decode gfl 3598 anchors",
    "class-aware nms 1000 boxes",
    "point in polygon 5000 pts",
)


def two_threads_speedup(fn: Fn, calls: int) -> float:
    """Throughput of two threads calling `fn` at once over one thread alone (2.0: fully parallel)."""
    fn()

    def run() -> None:
        for _ in range(calls):
            fn()

    t0 = time.perf_counter()
    run()
    alone = time.perf_counter() - t0
    threads = [threading.Thread(target=run) for _ in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 2 * alone / (time.perf_counter() - t0)


def _threads_table(all_cases: list[KernelCase], quick: bool) -> Table:
    calls = 20 if quick else 100
    rows = tuple((case.name, two_threads_speedup(case.numba, calls)) for case in all_cases if case.name in THREADED)
    return Table(
        "Kernels in two threads at once: throughput over one thread",
        ("kernel", "two threads / one"),
        rows,
        note=f"{calls} calls per thread; up to 2.0 when the kernel releases the GIL and two cores are free, "
        "1.0 when the GIL serialises the calls. Other work on the box lowers it.",
    )


def collect(quick: bool = False) -> Section:
    repeats = 30 if quick else 300
    rows = []
    all_cases = cases()
    for case in all_cases:
        # Slow references (the interpreted assignment) get fewer calls; the median stays honest.
        ref_repeats = max(5, repeats // 20) if "assignment" in case.name else repeats
        fast = spread(time_us(case.numba, repeats))
        ref = spread(time_us(case.numpy, ref_repeats))
        lib = spread(time_us(case.library, repeats)) if case.library is not None else None
        rows.append(
            (
                case.name,
                f"{fast[0]:.1f} ({fast[1]:.1f}-{fast[2]:.1f})",
                f"{ref[0]:.1f}",
                ref[0] / fast[0],
                case.library_name or None,
                f"{lib[0]:.1f}" if lib else None,
                lib[0] / fast[0] if lib else None,
            )
        )
    status = kernel_status()
    mode = "compiled ahead of time" if status.mode == "aot" else "Numba's JIT"
    table = Table(
        f"Numba kernels ({mode}) vs NumPy reference vs library routine: median us per call (numba p10-p90)",
        ("kernel", "numba us", "numpy us", "numpy/numba", "library routine", "library us", "library/numba"),
        tuple(rows),
        note=f"{repeats} calls per kernel ({'quick' if quick else 'full'}); ratios > 1 mean "
        "the Numba kernel is faster. The NumPy reference of the assignment is the same algorithm run "
        f"by the interpreter (fewer calls). Kernels: {status.mode} ({status.detail}).",
        float_digits=1,
    )
    worst = min(rows, key=lambda r: float(r[3]))
    return Section(
        "kernels",
        "Numba kernels",
        (table, _threads_table(all_cases, quick)),
        headline=(
            (
                "kernels faster than their NumPy reference",
                f"{sum(float(r[3]) > 1 for r in rows)}/{len(rows)} (lowest ratio {float(worst[3]):.1f}x: {worst[0]})",
            ),
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print_section(collect(parser.parse_args().quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
