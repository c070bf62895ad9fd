"""Tracking accuracy (MOTA, IDF1) against MOTChallenge ground truth.

Scores come from `motmetrics` (py-motmetrics, the maintained library behind
the MOTChallenge devkit's Python port). Its own `iou_matrix` calls
`np.asfarray`, which NumPy 2 removed, so the distance matrix is computed
here (1 - IoU, no match below IoU 0.5, as MOTChallenge scores) and passed in.

MOT text format, one box per line: `frame,id,x,y,w,h,conf,...`, frame
1-based, x,y the top-left corner in pixels.
"""

from __future__ import annotations

__all__ = ["MotScores", "MotSequence", "evaluate_tracks", "noisy_detections", "read_mot", "write_mot"]

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.detection.box_ops import iou_matrix
from agent.values.detections import Detections, Tracks


@dataclass(frozen=True, slots=True)
class MotSequence:
    """Boxes of one sequence per 1-based frame: ids (n,) int64 and boxes (n, 4) xyxy px."""

    frames: Mapping[int, tuple[np.ndarray, np.ndarray]]
    last_frame: int


@dataclass(frozen=True, slots=True)
class MotScores:
    """CLEAR-MOT and identity scores of one sequence."""

    mota: float
    idf1: float
    motp_iou: float
    id_switches: int
    false_positives: int
    misses: int
    gt_boxes: int


def read_mot(path: str | Path, *, min_conf: float = 0.0) -> MotSequence:
    """Read a MOT text file (gt or tracker output); rows with conf < min_conf are skipped
    (MOT gt marks boxes to ignore with conf 0)."""
    data = np.loadtxt(path, delimiter=",", ndmin=2)
    if data.shape[1] < 6:
        raise ValueError(f"{path}: expected at least 6 comma-separated columns, got {data.shape[1]}")
    if data.shape[1] >= 7:
        data = data[data[:, 6] >= min_conf]
    frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for f in np.unique(data[:, 0]).astype(int):
        rows = data[data[:, 0] == f]
        boxes = np.hstack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]).astype(np.float32)
        frames[int(f)] = (rows[:, 1].astype(np.int64), boxes)
    return MotSequence(frames, int(data[:, 0].max()) if len(data) else 0)


def write_mot(path: str | Path, tracks_by_frame: Mapping[int, Tracks]) -> None:
    """Write tracker output in MOT format (frames 1-based)."""
    with open(path, "w", encoding="utf-8") as out:
        for frame, tr in sorted(tracks_by_frame.items()):
            for box, tid, score in zip(tr.box_xyxy_px, tr.track_id, tr.score, strict=False):
                x1, y1, x2, y2 = (float(v) for v in box)
                out.write(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.3f},-1,-1,-1\n")


def evaluate_tracks(gt: MotSequence, tracks_by_frame: Mapping[int, Tracks], *, min_iou: float = 0.5) -> MotScores:
    """Score tracker output (keyed by 1-based frame) against ground truth."""
    import motmetrics as mm  # heavy (pandas): only loaded when scoring

    acc = mm.MOTAccumulator(auto_id=False)
    empty_ids, empty_boxes = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    for frame in range(1, max(gt.last_frame, max(tracks_by_frame, default=0)) + 1):
        gt_ids, gt_boxes = gt.frames.get(frame, (empty_ids, empty_boxes))
        tr = tracks_by_frame.get(frame, Tracks.empty())
        dist = 1.0 - iou_matrix(gt_boxes, tr.box_xyxy_px).astype(np.float64)
        dist[dist > 1.0 - min_iou] = np.nan
        acc.update(gt_ids.tolist(), tr.track_id.tolist(), dist, frameid=frame)
    names = ["mota", "idf1", "motp", "num_switches", "num_false_positives", "num_misses", "num_objects"]
    row = mm.metrics.create().compute(acc, metrics=names, name="seq").iloc[0]
    return MotScores(
        mota=float(row["mota"]),
        idf1=float(row["idf1"]),
        motp_iou=1.0 - float(row["motp"]),
        id_switches=int(row["num_switches"]),
        false_positives=int(row["num_false_positives"]),
        misses=int(row["num_misses"]),
        gt_boxes=int(row["num_objects"]),
    )


def noisy_detections(
    gt: MotSequence,
    *,
    seed: int = 0,
    drop_fraction: float = 0.1,
    jitter_px: float = 3.0,
    false_positive_rate: float = 0.3,
    frame_wh: tuple[int, int] = (768, 576),
) -> Iterable[tuple[int, Detections]]:
    """Turn ground truth into detector-like output, deterministically per seed.

    Each true box is dropped with probability drop_fraction, its corners
    jittered by N(0, jitter_px); scores mimic a detector (mostly high, some
    low); each frame gets Poisson(false_positive_rate) random false boxes,
    mostly with low scores. Yields (1-based frame, detections), class 0.
    """
    rng = np.random.default_rng(seed)
    w, h = frame_wh
    for frame in range(1, gt.last_frame + 1):
        _, boxes = gt.frames.get(frame, (None, np.zeros((0, 4), np.float32)))
        keep = rng.random(len(boxes)) >= drop_fraction
        true = boxes[keep] + rng.normal(0.0, jitter_px, (int(keep.sum()), 4)).astype(np.float32)
        true_scores = np.where(
            rng.random(len(true)) < 0.85, rng.uniform(0.55, 0.95, len(true)), rng.uniform(0.15, 0.5, len(true))
        )
        n_fp = int(rng.poisson(false_positive_rate))
        xy = rng.uniform([0, 0], [w - 40, h - 90], (n_fp, 2))
        size = rng.uniform([20, 50], [40, 90], (n_fp, 2))
        fp = np.hstack([xy, xy + size]).astype(np.float32)
        fp_scores = np.where(rng.random(n_fp) < 0.7, rng.uniform(0.1, 0.45, n_fp), rng.uniform(0.5, 0.8, n_fp))
        all_boxes = np.vstack([true, fp]).astype(np.float32)
        scores = np.concatenate([true_scores, fp_scores]).astype(np.float32)
        yield frame, Detections(all_boxes, scores, np.zeros(len(scores), np.int32))
