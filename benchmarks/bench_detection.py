"""Detection benchmark: per-stage time per model, Numba vs NumPy per kernel, person AP50.

Run from the repository root with the shared assets beside it:

    EDGE_AGENT_MODEL_PATH=../shared/assets/models python -m benchmarks.bench_detection [--repeats 50] [--quick]

Prints three tables; `collect()` returns the per-model table for the report
(the kernel tables live in benchmarks/bench_kernels.py for the report). Times are wall-clock milliseconds on this machine with
the detector's default 2 ONNX Runtime threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.detection import DetectorOptions, ObjectDetector, box_ops, decoding, preprocess  # noqa: E402  # noqa: E402
from agent.detection.model_store import resolve_model  # noqa: E402
from agent.evaluation.detection_ap import DetectionAPAccumulator, load_mot_boxes  # noqa: E402
from benchmarks.report import Plot, Section, Table, print_section  # noqa: E402

ASSETS = (REPO / ".." / "shared" / "assets").resolve()
CLIPS = {
    "vtest": ("videos/vtest.avi", "videos/PETS09-S2L1/gt/gt.txt"),
    "TUD": ("videos/TUD-Stadtmitte/TUD-Stadtmitte.mp4", "videos/TUD-Stadtmitte/gt/gt.txt"),
}


def manifest_models() -> list[tuple[str, int]]:
    """Every (model, input side) the manifest lists as supported."""
    from agent.detection.manifest import load_manifest

    return [(name, side) for name, spec in load_manifest().items() for side in spec.supported_sizes]


def spread(values: list[float]) -> str:
    q = np.percentile(values, [50, 10, 90])
    return f"{q[0]:.2f} ({q[1]:.2f}-{q[2]:.2f})"


def read_frames(every: int, clip: str = "vtest") -> list[tuple[int, np.ndarray]]:
    cap = cv2.VideoCapture(str(ASSETS / CLIPS[clip][0]))
    frames, number = [], 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        number += 1
        if (number - 1) % every == 0:
            frames.append((number, image))
    return frames


def person_ap(name: str, side: int, clip: str, frames: list[tuple[int, np.ndarray]]) -> float:
    gt_path = ASSETS / CLIPS[clip][1]
    gt, ignored = load_mot_boxes(gt_path), load_mot_boxes(gt_path, ignored=True)
    acc = DetectionAPAccumulator()
    opts = DetectorOptions(input_size_hw=(side, side), classes=("person",), score_threshold=0.05)
    with ObjectDetector.from_model(name, opts) as det:
        for number, image in frames:
            d = det.detect(image)
            acc.add_frame(d.box_xyxy_px, d.score, gt.get(number, []), ignored.get(number))
    return acc.result().ap


def stage_samples(name: str, side: int, frames: list[tuple[int, np.ndarray]], repeats: int) -> list[list[float]]:
    """ms of preprocess, inference, postprocess per call on vtest frames."""
    stages: list[list[float]] = [[], [], []]
    with ObjectDetector.from_model(name, DetectorOptions(input_size_hw=(side, side), classes=("person",))) as det:
        for i in range(repeats):
            det.detect(frames[i % len(frames)][1])
            t = det.last_timings
            for col, v in zip(stages, (t.preprocess_ms, t.inference_ms, t.postprocess_ms), strict=False):
                col.append(v)
    return stages


def collect(quick: bool = False, repeats: int | None = None) -> Section:
    """Speed and person AP50 of every manifest model at every supported input size."""
    from agent.errors import ModelError

    repeats = repeats or (10 if quick else 50)
    vtest, tud = read_frames(25 if quick else 5), read_frames(10 if quick else 2, "TUD")
    rows, fps_by, missing = [], {}, []
    for name, side in manifest_models():
        try:
            stages = stage_samples(name, side, vtest, repeats)
        except ModelError as err:
            missing.append(f"{name}@{side}: {err}")
            continue
        total = [sum(v) for v in zip(*stages, strict=False)]
        fps = 1e3 / float(np.median(total))
        fps_by[(name, side)] = fps
        rows.append(
            (
                name,
                side,
                *(spread(s) for s in stages),
                fps,
                person_ap(name, side, "vtest", vtest),
                person_ap(name, side, "TUD", tud),
            )
        )
    table = Table(
        f"Detectors: ms per frame, median (p10-p90) over {repeats} vtest.avi frames; person AP50",
        (
            "model",
            "input",
            "preprocess ms",
            "inference ms",
            "postprocess ms",
            "detector fps",
            f"AP50 vtest ({len(vtest)} fr)",
            f"AP50 TUD ({len(tud)} fr)",
        ),
        tuple(rows),
        float_digits=3,
        note="Detector fps = 1000 / median(pre + inference + post); 2 ONNX Runtime threads. AP50 at "
        "score >= 0.05, person class, against the MOT ground truth (one vtest frame "
        f"in {25 if quick else 5}, one TUD frame in {10 if quick else 2}).",
    )
    names = tuple(dict.fromkeys(n for n, _ in fps_by))
    sides = sorted({s for _, s in fps_by})
    plot = Plot(
        "detector_fps.png",
        "bar",
        "Detector fps by model and input size (vtest.avi)",
        names,
        tuple((f"{s}px", tuple(fps_by.get((n, s), float("nan")) for n in names)) for s in sides),
        "frames per second",
    )
    best = max(rows, key=lambda r: r[6]) if rows else None
    headline = (
        (("best person AP50 on vtest", f"{best[0]}@{best[1]}: {best[6]:.3f} at {best[5]:.0f} fps"),) if best else ()
    )
    return Section(
        "detection",
        "Detectors: speed and person AP50 per model and input size",
        (table,),
        (plot,),
        tuple(f"not run: {m}" for m in missing),
        headline,
    )


def time_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def nms_cases(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xy = rng.uniform(0, 400, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 120, (n, 2))], 1).astype(np.float32)
    return boxes, rng.uniform(0.05, 1, n).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


def kernel_rows(image: np.ndarray, repeats: int) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    rng = np.random.default_rng(0)
    rows = []
    spec, path = resolve_model("yolox-nano-416")
    with ObjectDetector(spec, path) as det:
        pre = det._pre  # the real preallocated buffers of a detector
        pre.update(image)
        outputs = det._session.run(pre.tensor)
    resized = cv2.resize(image, (416, 312))
    mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
    rows.append(
        (
            "hwc->nchw 416x312",
            lambda: preprocess.hwc_to_nchw_normalised(resized, pre.tensor, "bgr", mean, std),
            lambda: preprocess.hwc_to_nchw_normalised_numpy(resized, pre.tensor, "bgr", mean, std),
        )
    )
    mask = np.zeros(80, np.bool_)
    mask[0] = True
    buf = decoding.CandidateBuffers(3549)
    rows.append(
        (
            "decode yolox 3549",
            lambda: decoding.decode_yolox(outputs[0], spec.strides, (416, 416), 0.05, mask, buf),
            lambda: decoding.decode_yolox_numpy(outputs[0], spec.strides, (416, 416), 0.05, mask),
        )
    )
    pspec, ppath = resolve_model("picodet-s-416")
    with ObjectDetector(pspec, ppath) as det:
        det._pre.update(image)
        pout = det._session.run(det._pre.tensor)
    gfl_args = (pout[:4], pout[4:], pspec.strides, (416, 416), 0.0, 0.05, mask)
    gbuf = decoding.CandidateBuffers(3598)
    rows.append(
        (
            "decode gfl 3598",
            lambda: decoding.decode_gfl(*gfl_args, out=gbuf),
            lambda: decoding.decode_gfl_numpy(*gfl_args),
        )
    )
    v8 = np.concatenate([rng.uniform(0, 640, (1, 4, 8400)), rng.uniform(0, 1, (1, 80, 8400)) ** 4], 1).astype(
        np.float32
    )
    all_cls = np.ones(80, np.bool_)
    vbuf = decoding.CandidateBuffers(8400)
    rows.append(
        (
            "decode yolov8 8400",
            lambda: decoding.decode_yolov8(v8, 0.25, all_cls, vbuf),
            lambda: decoding.decode_yolov8_numpy(v8, 0.25, all_cls),
        )
    )
    a, b = nms_cases(rng, 60)[0], nms_cases(rng, 80)[0]
    rows.append(("iou 60x80", lambda: box_ops.iou_matrix(a, b), lambda: box_ops.iou_matrix_numpy(a, b)))
    for n in (100, 1000):
        boxes, score, cls = nms_cases(rng, n)
        rows.append(
            (
                f"nms {n} boxes",
                functools_partial(box_ops.nms_class_aware, boxes, score, cls, 0.45),
                functools_partial(box_ops.nms_class_aware_numpy, boxes, score, cls, 0.45),
            )
        )
    return rows


def functools_partial(fn: Callable[..., object], *args: object) -> Callable[[], object]:
    return lambda: fn(*args)


def bench_kernels(image: np.ndarray, repeats: int) -> None:
    print(f"\n== kernels: median ms over {repeats} calls ==")
    print(f"{'kernel':<22}{'numba':>10}{'numpy':>10}{'numpy/numba':>13}")
    for label, fast, ref in kernel_rows(image, repeats):
        tf, tr = time_ms(fast, repeats), time_ms(ref, repeats)
        print(f"{label:<22}{tf:>10.4f}{tr:>10.4f}{tr / tf:>12.1f}x")
    rng = np.random.default_rng(1)
    print(f"\n{'nms vs OpenCV':<22}{'numba':>10}{'cv2':>10}{'cv2/numba':>13}")
    for n in (100, 1000):
        boxes, score, cls = nms_cases(rng, n)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        tf = time_ms(lambda: box_ops.nms_class_aware(boxes, score, cls, 0.45), repeats)
        tc = time_ms(lambda: cv2.dnn.NMSBoxesBatched(xywh, score, cls, 0.0, 0.45), repeats)
        print(f"{'nms ' + str(n) + ' boxes':<22}{tf:>10.4f}{tc:>10.4f}{tc / tf:>12.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per model and per kernel")
    parser.add_argument("--quick", action="store_true", help="fewer frames for AP and timing")
    args = parser.parse_args()
    os.environ.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    print_section(collect(args.quick, args.repeats))
    frames = read_frames(5)
    bench_kernels(frames[len(frames) // 2][1], max(args.repeats, 200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
