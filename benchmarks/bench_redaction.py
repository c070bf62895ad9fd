"""Snapshot redaction benchmark: face recall against an independent detector, and cost.

Inputs: messi5.jpg and every Nth frame of Megamind.avi (Debian opencv-doc,
fetched into .cache/ as the tests do) and ../shared/assets/images/darknet_person.jpg.
The independent detector is OpenCV 4.x's Haar frontal cascades (default and
alt2), run from the test suite's throwaway venv under .cache/haar-venv.

A Haar face counts as redacted when at most 5% of its pixels are unchanged
in the redacted JPEG. Prints recall, the worst kept fraction, CenterFace's
own hit rate on the Haar faces (a Haar box whose centre lies in a detected
face box), and ms per snapshot (face detection, fill, JPEG encode), median
and p95, on frames at their native size.

    python benchmarks/bench_redaction.py [--assets ../shared/assets] [--video-step 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from agent.config import FaceDetectorConfig
from agent.privacy.faces import CenterFaceDetector
from agent.privacy.snapshots import SnapshotMaker
from benchmarks.report import Section, Table
from tests.conftest import fetch_opencv_doc
from tests.privacy.redaction_check import check_faces, haar_face_boxes, load_inputs, redact


def haar_boxes(images: list[np.ndarray]) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i}.png" for i in range(len(images))]
        for path, image in zip(paths, images, strict=False):
            cv2.imwrite(str(path), image)
        return haar_face_boxes(paths)


def centre_hits(haar: np.ndarray, faces: np.ndarray) -> int:
    hits = 0
    for x1, y1, x2, y2 in haar:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        hits += bool(((faces[:, 0] <= cx) & (cx <= faces[:, 2]) & (faces[:, 1] <= cy) & (cy <= faces[:, 3])).any())
    return hits


def _face_stats(checks: list) -> tuple[str, float, float]:  # type: ignore[type-arg]
    kept = [c.kept_fraction for c in checks]
    ok = sum(k <= 0.05 for k in kept)
    return (
        f"{ok}/{len(kept)} = {ok / max(1, len(kept)):.3f}",
        float(np.mean(kept)) if kept else 0.0,
        max(kept, default=0.0),
    )


def _ours(inputs: list[tuple[str, np.ndarray]], haar: list[np.ndarray]) -> tuple[list[float], list]:  # type: ignore[type-arg]
    detector = CenterFaceDetector(FaceDetectorConfig(threads=2))  # deface's ONNX Runtime uses every core
    maker = SnapshotMaker(lambda: detector)
    redact(maker, inputs[0][1])  # warm-up
    ms, checks = [], []
    for (name, image), boxes in zip(inputs, haar, strict=True):
        t0 = time.perf_counter()
        _, redacted = redact(maker, image)
        ms.append((time.perf_counter() - t0) * 1000)
        checks += check_faces(name, image, redacted, boxes)
    return ms, checks


def _deface(
    inputs: list[tuple[str, np.ndarray]], haar: list[np.ndarray], video: Path, frames: int
) -> tuple[float, float, list]:  # type: ignore[type-arg]
    from benchmarks.deface_cli import run_deface

    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"in{i:04d}.png" for i in range(len(inputs))]
        for path, (_, image) in zip(paths, inputs, strict=True):
            cv2.imwrite(str(path), image)
        one = run_deface(paths[:1]).wall_s  # process start and model load
        run = run_deface(paths)
        checks = []
        for (name, image), boxes, out in zip(inputs, haar, run.outputs, strict=True):
            checks += check_faces(name, image, cv2.imread(str(out)), boxes)
        clip = Path(tmp) / "clip.avi"
        _write_clip(video, clip, frames)
        video_s = run_deface([clip], output=Path(tmp) / "out.mp4").wall_s
    per_image_ms = (run.wall_s - one) * 1000 / max(1, len(paths) - 1)
    return per_image_ms, frames / max(1e-9, video_s - one), checks


def _write_clip(src: Path, dst: Path, frames: int) -> None:
    cap = cv2.VideoCapture(str(src))
    writer = None
    for _ in range(frames):
        ok, image = cap.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), 25, image.shape[1::-1])
        writer.write(image)
    cap.release()
    if writer is not None:
        writer.release()


def _clip_fps(video: Path, frames: int) -> float:
    """Our detect + fill + JPEG over the first `frames` frames of the clip."""
    detector = CenterFaceDetector(FaceDetectorConfig(threads=2))
    maker = SnapshotMaker(lambda: detector)
    cap = cv2.VideoCapture(str(video))
    images = [img for ok, img in (cap.read() for _ in range(frames)) if ok]
    cap.release()
    redact(maker, images[0])
    t0 = time.perf_counter()
    for image in images:
        redact(maker, image)
    return len(images) / (time.perf_counter() - t0)


def collect(
    quick: bool = False, assets: Path = Path(__file__).resolve().parents[1] / ".." / "shared" / "assets"
) -> Section:
    """Agent redaction beside the `deface` CLI on the same images and clip."""
    doc = fetch_opencv_doc()
    inputs = list(load_inputs(doc, assets.resolve(), 15 if quick else 3))
    haar = haar_boxes([image for _, image in inputs])
    frames = 60 if quick else 270
    ms, ours = _ours(inputs, haar)
    rows: list[tuple[str | float | None, ...]] = [
        (
            "agent (CenterFace, solid fill, JPEG q90)",
            *_face_stats(ours),
            statistics.median(ms),
            _clip_fps(doc / "Megamind.avi", frames),
        )
    ]
    notes = [
        f"{len(inputs)} images (messi5.jpg, darknet_person.jpg, Megamind.avi frames), "
        f"{len(ours)} Haar faces; clip fps over the first {frames} frames of Megamind.avi (720x528)."
    ]
    error = None
    try:
        per_ms, fps, theirs = _deface(inputs, haar, doc / "Megamind.avi", frames)
        rows.append(("deface 1.5.0 CLI (--replacewith solid, onnxrt)", *_face_stats(theirs), per_ms, fps))
        notes.append(
            "deface ms per image and clip fps exclude its process start and model load "
            "(a one-image run's wall time is subtracted). deface writes PNG / MP4 (its own encoder)."
        )
    except RuntimeError as err:
        error = f"deface could not run: {err}"
    table = Table(
        "Face redaction: agent vs deface on the same inputs",
        (
            "tool",
            "faces redacted (<=5% pixels unchanged)",
            "mean unchanged fraction",
            "worst unchanged fraction",
            "ms per image",
            "clip fps",
        ),
        tuple(rows),
        float_digits=3,
        note="Face boxes from OpenCV 4 Haar cascades (independent of both). An unchanged pixel: every "
        "channel within 12 levels of the original (JPEG noise).",
    )
    headline = tuple((f"face recall / clip fps: {r[0]}", f"{r[1]} / {float(r[5]):.1f} fps") for r in rows)
    return Section(
        "redaction", "Face redaction: agent vs deface", (table,), notes=tuple(notes), headline=headline, error=error
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "assets")
    parser.add_argument("--video-step", type=int, default=3, help="use every Nth Megamind frame")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for the face detector")
    args = parser.parse_args()
    inputs = list(load_inputs(fetch_opencv_doc(), args.assets.resolve(), args.video_step))
    detector = CenterFaceDetector(FaceDetectorConfig(threads=args.threads))
    maker = SnapshotMaker(lambda: detector)
    redact(maker, inputs[0][1])  # warm-up: first run allocates ONNX Runtime buffers
    haar = haar_boxes([image for _, image in inputs])
    checks, ms, detect_ms, hits = [], [], [], 0
    for (name, image), boxes in zip(inputs, haar, strict=True):
        t0 = time.perf_counter()
        _, redacted = redact(maker, image)
        ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        faces = detector.detect(image).box_xyxy_px
        detect_ms.append((time.perf_counter() - t0) * 1000)
        hits += centre_hits(boxes, faces)
        checks += check_faces(name, image, redacted, boxes)
    kept = [c.kept_fraction for c in checks]
    redacted_ok = sum(k <= 0.05 for k in kept)
    print(f"inputs: {len(inputs)} images/frames, {len(checks)} Haar faces, face detector threads={args.threads}")
    print("| metric | value |")
    print("|---|---|")
    print(
        f"| face recall (Haar faces with <=5% pixels unchanged) | {redacted_ok}/{len(checks)} = {redacted_ok / max(1, len(checks)):.3f} |"
    )
    print(f"| worst kept fraction of a Haar face | {max(kept, default=0):.3f} |")
    print(
        f"| CenterFace detections covering a Haar face centre | {hits}/{len(checks)} = {hits / max(1, len(checks)):.3f} |"
    )
    print(
        f"| ms per snapshot (detect+fill+JPEG), median / p95 | {statistics.median(ms):.1f} / {np.percentile(ms, 95):.1f} |"
    )
    print(f"| ms face detection alone, median | {statistics.median(detect_ms):.1f} |")
    for c in checks:
        if c.kept_fraction > 0.05:
            print(f"kept > 5%: {c.name} Haar box {tuple(map(int, c.box_xyxy_px))} kept {c.kept_fraction:.3f}")
    sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for _, im in inputs})
    print(f"frame sizes: {', '.join(sizes)}")


if __name__ == "__main__":
    main()
