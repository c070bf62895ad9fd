"""Detection benchmark: per-stage time per model, Numba vs NumPy per kernel, person AP50.

Run from the repository root with the shared assets beside it:

    EDGE_AGENT_MODEL_PATH=../shared/assets/models python benchmarks/bench_detection.py [--repeats 50]

Prints three tables. Times are wall-clock milliseconds on this machine with
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

from agent.detection import DetectorOptions, ObjectDetector  # noqa: E402
from agent.detection import box_ops, decoding, preprocess  # noqa: E402
from agent.evaluation.detection_ap import DetectionAPAccumulator, load_mot_boxes  # noqa: E402
from agent.model_store import resolve_model  # noqa: E402

ASSETS = (REPO / ".." / "shared" / "assets").resolve()
MODELS: list[tuple[str, tuple[int, int] | None]] = [
    ("yolox-nano-416", None), ("yolox-nano", (320, 320)), ("yolox-nano", (640, 640)),
    ("picodet-s-416", None), ("picodet-s-320", None), ("nanodet-m-320", None),
    ("person-light", (192, 192)), ("person-light", (416, 416)),
]


def spread(values: list[float]) -> str:
    q = np.percentile(values, [50, 10, 90])
    return f"{q[0]:7.2f} ({q[1]:.2f}-{q[2]:.2f})"


def read_frames(every: int) -> list[tuple[int, np.ndarray]]:
    cap = cv2.VideoCapture(str(ASSETS / "videos" / "vtest.avi"))
    frames, number = [], 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        number += 1
        if (number - 1) % every == 0:
            frames.append((number, image))
    return frames


def bench_models(frames: list[tuple[int, np.ndarray]], repeats: int) -> None:
    gt, ignored = load_mot_boxes(ASSETS / "videos/PETS09-S2L1/gt/gt.txt"), load_mot_boxes(
        ASSETS / "videos/PETS09-S2L1/gt/gt.txt", ignored=True)
    print(f"\n== per model on vtest.avi (768x576): median (p10-p90) ms over {repeats} frames; "
          f"person AP50 over {len(frames)} frames ==")
    print(f"{'model':<16}{'input':>8} {'preprocess':>22}{'inference':>22}{'postprocess':>22}  AP50")
    for name, size in MODELS:
        timing_opts = DetectorOptions(input_size_hw=size, classes=("person",))
        with ObjectDetector.from_model(name, timing_opts) as det:
            stages: list[list[float]] = [[], [], []]
            for i in range(repeats):
                det.detect(frames[i % len(frames)][1])
                t = det.last_timings
                for col, v in zip(stages, (t.preprocess_ms, t.inference_ms, t.postprocess_ms)):
                    col.append(v)
        acc = DetectionAPAccumulator()
        ap_opts = DetectorOptions(input_size_hw=size, classes=("person",), score_threshold=0.05)
        with ObjectDetector.from_model(name, ap_opts) as det:
            for number, image in frames:
                d = det.detect(image)
                acc.add_frame(d.box_xyxy_px, d.score, gt.get(number, []), ignored.get(number))
        side = f"{det.input_size_hw[0]}"
        print(f"{name:<16}{side:>8} {spread(stages[0]):>22}{spread(stages[1]):>22}{spread(stages[2]):>22}"
              f"  {acc.result().ap:.3f}")


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
    rows.append(("hwc->nchw 416x312", lambda: preprocess.hwc_to_nchw_normalised(resized, pre.tensor, "bgr", mean, std),
                 lambda: preprocess.hwc_to_nchw_normalised_numpy(resized, pre.tensor, "bgr", mean, std)))
    mask = np.zeros(80, np.bool_)
    mask[0] = True
    buf = decoding.CandidateBuffers(3549)
    rows.append(("decode yolox 3549", lambda: decoding.decode_yolox(outputs[0], spec.strides, (416, 416), 0.05, mask, buf),
                 lambda: decoding.decode_yolox_numpy(outputs[0], spec.strides, (416, 416), 0.05, mask)))
    pspec, ppath = resolve_model("picodet-s-416")
    with ObjectDetector(pspec, ppath) as det:
        det._pre.update(image)
        pout = det._session.run(det._pre.tensor)
    gfl_args = (pout[:4], pout[4:], pspec.strides, (416, 416), 0.0, 0.05, mask)
    gbuf = decoding.CandidateBuffers(3598)
    rows.append(("decode gfl 3598", lambda: decoding.decode_gfl(*gfl_args, out=gbuf),
                 lambda: decoding.decode_gfl_numpy(*gfl_args)))
    v8 = np.concatenate([rng.uniform(0, 640, (1, 4, 8400)), rng.uniform(0, 1, (1, 80, 8400)) ** 4], 1).astype(np.float32)
    all_cls = np.ones(80, np.bool_)
    vbuf = decoding.CandidateBuffers(8400)
    rows.append(("decode yolov8 8400", lambda: decoding.decode_yolov8(v8, 0.25, all_cls, vbuf),
                 lambda: decoding.decode_yolov8_numpy(v8, 0.25, all_cls)))
    a, b = nms_cases(rng, 60)[0], nms_cases(rng, 80)[0]
    rows.append(("iou 60x80", lambda: box_ops.iou_matrix(a, b), lambda: box_ops.iou_matrix_numpy(a, b)))
    for n in (100, 1000):
        boxes, score, cls = nms_cases(rng, n)
        rows.append((f"nms {n} boxes", functools_partial(box_ops.nms_class_aware, boxes, score, cls, 0.45),
                     functools_partial(box_ops.nms_class_aware_numpy, boxes, score, cls, 0.45)))
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
    parser.add_argument("--every", type=int, default=5, help="AP over every N-th vtest.avi frame (1: all)")
    args = parser.parse_args()
    os.environ.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    frames = read_frames(args.every)
    bench_models(frames, args.repeats)
    bench_kernels(frames[len(frames) // 2][1], max(args.repeats, 200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
