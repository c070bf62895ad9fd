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

from agent.config.schema import FaceDetectorConfig
from agent.privacy.faces import CenterFaceDetector
from agent.privacy.snapshots import SnapshotMaker
from tests.conftest import fetch_opencv_doc
from tests.privacy.conftest import _HAAR_SCRIPT, _haar_python
from tests.privacy.redaction_check import check_faces, load_inputs, redact


def haar_boxes(images: list[np.ndarray]) -> list[np.ndarray]:
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, image in enumerate(images):
            paths.append(str(Path(tmp) / f"{i}.png"))
            cv2.imwrite(paths[-1], image)
        done = subprocess.run([str(_haar_python()), "-c", _HAAR_SCRIPT, *paths], check=True, capture_output=True, text=True)
    out = []
    for boxes in json.loads(done.stdout):
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        out.append(b)
    return out


def centre_hits(haar: np.ndarray, faces: np.ndarray) -> int:
    hits = 0
    for x1, y1, x2, y2 in haar:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        hits += bool(((faces[:, 0] <= cx) & (cx <= faces[:, 2]) & (faces[:, 1] <= cy) & (cy <= faces[:, 3])).any())
    return hits


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
    print(f"| face recall (Haar faces with <=5% pixels unchanged) | {redacted_ok}/{len(checks)} = {redacted_ok / max(1, len(checks)):.3f} |")
    print(f"| worst kept fraction of a Haar face | {max(kept, default=0):.3f} |")
    print(f"| CenterFace detections covering a Haar face centre | {hits}/{len(checks)} = {hits / max(1, len(checks)):.3f} |")
    print(f"| ms per snapshot (detect+fill+JPEG), median / p95 | {statistics.median(ms):.1f} / {np.percentile(ms, 95):.1f} |")
    print(f"| ms face detection alone, median | {statistics.median(detect_ms):.1f} |")
    for c in checks:
        if c.kept_fraction > 0.05:
            print(f"kept > 5%: {c.name} Haar box {tuple(map(int, c.box_xyxy_px))} kept {c.kept_fraction:.3f}")
    sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for _, im in inputs})
    print(f"frame sizes: {', '.join(sizes)}")


if __name__ == "__main__":
    main()
