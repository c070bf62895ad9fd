"""What `edge-agent detect` reports with the shipped settings, against MOT ground truth.

The detect output is the pipeline's own confirmed tracks (detector, tracker,
object filter; config/demo.yaml, every frame). Tracking must not lose the
people the detector finds: weak boxes keep a partly hidden person tracked,
and a track's first frames wait for one confirmation, not two stacked ones.
The yardstick is the same model's raw detections at score >= 0.05, the
whole precision-recall curve of what the detector can give.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.detection import DetectorOptions, ObjectDetector
from agent.detection.box_ops import iou_matrix
from agent.evaluation.detection_ap import APResult, DetectionAPAccumulator, load_mot_boxes
from agent.evaluation.mot import read_mot

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
Boxes = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # frame -> (xyxy, score, track id)


def clip(assets_dir: Path, name: str) -> tuple[Path, Path]:
    videos = assets_dir / "videos"
    if name == "pets":
        return videos / "vtest.avi", videos / "PETS09-S2L1" / "gt" / "gt.txt"
    return videos / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4", videos / "TUD-Stadtmitte" / "gt" / "gt.txt"


def detect_output(video: Path, tmp_path: Path, max_frames: int | None = None) -> Boxes:
    """Person rows of `edge-agent detect --format jsonl` with the demo config, every frame."""
    out = tmp_path / "tracks.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "agent", "detect", "--config", str(DEMO), "--source", str(video)]
    command += ["--format", "jsonl", "--out", str(out), "--start-time", "2026-01-01T00:00:00+00:00"]
    command += ["--set", f"signing.key_file={tmp_path / 'key.pem'}"]
    command += ["--set", f"policies.pseudonym_key_file={tmp_path / 'pseudonym.key'}"]
    command += ["--set", f"policies.audit_log={tmp_path / 'audit.jsonl'}"]
    if max_frames is not None:
        command += ["--max-frames", str(max_frames)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    frames: Boxes = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        people = [o for o in row["objects"] if o["class_id"] == 0]  # person in the demo's COCO model
        boxes = np.array([o["box_xyxy_px"] for o in people], np.float32).reshape(-1, 4)
        scores = np.array([o["score"] for o in people], np.float32)
        frames[row["frame"]] = (boxes, scores, np.array([o["track_id"] for o in people], np.int64))
    return frames


def raw_detections(video: Path) -> Boxes:
    """The same model's person boxes at score >= 0.05, every frame (1-based)."""
    frames: Boxes = {}
    cap = cv2.VideoCapture(str(video))
    options = DetectorOptions(score_threshold=0.05, classes=("person",))
    with ObjectDetector.from_model("yolox-nano-416", options) as detector:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            d = detector.detect(image)
            frames[len(frames) + 1] = (d.box_xyxy_px, d.score, np.zeros(len(d), np.int64))
    cap.release()
    return frames


def person_ap50(frames: Boxes, gt_path: Path, last_frame: int) -> APResult:
    gt, ignored = load_mot_boxes(gt_path), load_mot_boxes(gt_path, ignored=True)
    acc = DetectionAPAccumulator(iou_threshold=0.5)
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    for number in range(1, last_frame + 1):
        boxes, scores, _ = frames.get(number, empty)
        acc.add_frame(boxes, scores, gt.get(number, []), ignored.get(number))
    return acc.result()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pets", "tud"])
def test_tracked_output_keeps_the_detectors_person_ap50(assets_dir: Path, tmp_path: Path, name: str) -> None:
    # Measured: PETS09 0.890 vs 0.897 (ratio 0.99; was 0.96), TUD-Stadtmitte 0.829 vs 0.852
    # (0.97; was 0.93, when the tracker never saw boxes under 0.35 and a new person was hidden
    # for the first three frames instead of two).
    video, gt_path = clip(assets_dir, name)
    raw = raw_detections(video)
    tracked = person_ap50(detect_output(video, tmp_path), gt_path, len(raw))
    reference = person_ap50(raw, gt_path, len(raw))
    assert tracked.ap >= 0.97 * reference.ap, (tracked, reference)


def test_a_person_standing_behind_the_lamp_post_stays_in_the_output(assets_dir: Path, tmp_path: Path) -> None:
    # In frames 44-83 of vtest.avi one person (ground truth id 15) stops behind the lamp
    # post: the post hides half of them and the detector scores them 0.1-0.35 most of the
    # time. Weak boxes keep their track going. Measured: 33 of the 40 frames (was 15).
    video, gt_path = clip(assets_dir, "pets")
    tracked = detect_output(video, tmp_path, max_frames=90)
    gt = read_mot(gt_path)
    covered = 0
    for number in range(44, 84):
        ids, boxes = gt.frames[number]
        person = boxes[ids == 15]
        reported = tracked[number][0]
        covered += bool(len(reported)) and float(iou_matrix(person, reported).max()) >= 0.5
    assert covered >= 30, covered
