"""Measures redaction against an independent face detector (shared by tests and the benchmark).

A face box from the independent detector "keeps" a pixel when the redacted
snapshot still shows that pixel as it was: every channel within `tol` of the
original (JPEG re-encoding moves untouched pixels by a few levels).
"""

from __future__ import annotations

__all__ = ["FaceCheck", "check_faces", "load_inputs"]

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from agent.config import SnapshotPolicy
from agent.privacy.snapshots import Snapshot, SnapshotMaker
from agent.values.alert_moment import AlertMoment
from tests.conftest import CACHE_DIR

# Whole frame, no scaling: the snapshot's pixels line up with the original's.
MEASURE_POLICY = SnapshotPolicy(enabled=True, framing="frame", max_side_px=4096, jpeg_quality=90)
JPEG_TOLERANCE = 12


@dataclass(frozen=True, slots=True)
class FaceCheck:
    name: str
    box_xyxy_px: tuple[int, int, int, int]
    kept_fraction: float


def load_inputs(opencv_doc: Path, assets: Path, video_step: int = 15) -> Iterator[tuple[str, np.ndarray]]:
    """(name, BGR image) for messi5.jpg, darknet_person.jpg and every `video_step`-th Megamind frame."""
    yield "messi5.jpg", cv2.imread(str(opencv_doc / "messi5.jpg"))
    yield "darknet_person.jpg", cv2.imread(str(assets / "images" / "darknet_person.jpg"))
    cap = cv2.VideoCapture(str(opencv_doc / "Megamind.avi"))
    index = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % video_step == 0:
                yield f"Megamind.avi#{index}", frame
            index += 1
    finally:
        cap.release()


def redact(maker: SnapshotMaker, image: np.ndarray) -> tuple[Snapshot, np.ndarray]:
    empty = np.zeros((0, 4), np.float32)
    snap = maker.make_all(AlertMoment(image, empty, empty), [MEASURE_POLICY])[MEASURE_POLICY]
    decoded = cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR)
    return snap, decoded


def check_faces(name: str, original: np.ndarray, redacted: np.ndarray, faces_xyxy: np.ndarray) -> list[FaceCheck]:
    """Fraction of each independent face box's pixels left unchanged."""
    unchanged = np.all(np.abs(original.astype(np.int16) - redacted.astype(np.int16)) <= JPEG_TOLERANCE, axis=2)
    h, w = unchanged.shape
    out = []
    for x1, y1, x2, y2 in np.asarray(faces_xyxy).reshape(-1, 4).astype(int):
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        region = unchanged[y1:y2, x1:x2]
        out.append(FaceCheck(name, (x1, y1, x2, y2), float(region.mean()) if region.size else 0.0))
    return out


HAAR_VENV = CACHE_DIR / "haar-venv"
_HAAR_SCRIPT = r"""
import json, sys
import cv2
cascades = [cv2.CascadeClassifier(cv2.data.haarcascades + name)
            for name in ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")]
out = []
for path in sys.argv[1:]:
    gray = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2GRAY)
    out.append([list(map(int, b)) for c in cascades for b in c.detectMultiScale(gray, 1.1, 5, minSize=(24, 24))])
print(json.dumps(out))
"""


def haar_python() -> Path:
    """The Python of a throwaway venv with OpenCV 4.x, whose wheels still ship Haar cascades."""
    python = HAAR_VENV / "bin" / "python"
    if python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(HAAR_VENV)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "opencv-python-headless>=4.8,<5",
            "numpy",
        ],
        check=True,
        capture_output=True,
    )
    return python


def haar_face_boxes(paths: list[Path]) -> list[np.ndarray]:
    """Face boxes (n, 4) `x1, y1, x2, y2` per image file, from OpenCV's Haar cascades (an
    independent detector: OpenCV 5 no longer has them, so they run in the 4.x venv)."""
    done = subprocess.run(
        [str(haar_python()), "-c", _HAAR_SCRIPT, *map(str, paths)], check=True, capture_output=True, text=True
    )
    out = []
    for boxes in json.loads(done.stdout):
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        out.append(b)
    return out
