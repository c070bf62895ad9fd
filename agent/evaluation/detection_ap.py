"""Average precision of a detector against MOTChallenge-style ground truth.

Owns reading MOT `gt.txt` boxes per frame and the AP computation: per frame,
predictions (best score first) are greedily matched to the unmatched ground
truth box with the highest IoU at or above the threshold; AP is the area under
the precision envelope over all points of the PR curve (as VOC 2010+ does).
"""

from __future__ import annotations

__all__ = ["APResult", "DetectionAPAccumulator", "average_precision", "load_mot_boxes"]

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.detection.box_ops import iou_matrix


def load_mot_boxes(gt_path: Path, *, ignored: bool = False) -> dict[int, np.ndarray]:
    """Read a MOT gt file into {frame (1-based): (n, 4) float32 xyxy boxes}.

    Rows whose `conf` column is 0 are "ignore" regions in MOT: they are left
    out, or returned alone when `ignored` is True (pass them to `add_frame`
    so detections on them count neither way).
    """
    rows = np.loadtxt(gt_path, delimiter=",", ndmin=2, dtype=np.float64)
    per_frame: dict[int, list[np.ndarray]] = defaultdict(list)
    for row in rows:
        is_ignored = row.shape[0] > 6 and row[6] == 0
        if is_ignored != ignored:
            continue
        x, y, w, h = row[2:6]
        per_frame[int(row[0])].append(np.array([x, y, x + w, y + h], np.float32))
    return {f: np.stack(boxes) for f, boxes in per_frame.items()}


def average_precision(tp: np.ndarray, score: np.ndarray, num_gt: int) -> float:
    """Area under the precision envelope of detections flagged true/false positive.

    Args:
        tp: (k,) bool, True where the detection matched a ground-truth box.
        score: (k,) detection scores (ranking order).
        num_gt: number of ground-truth boxes; 0 gives AP 0.
    """
    if num_gt == 0 or tp.size == 0:
        return 0.0
    order = np.argsort(-score, kind="stable")
    hits = tp[order].astype(np.float64)
    cum_tp = np.cumsum(hits)
    recall = cum_tp / num_gt
    precision = cum_tp / np.arange(1, len(hits) + 1)
    # Envelope: precision at recall r is the best precision at any recall >= r.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    recall_steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(recall_steps * envelope))


@dataclass(frozen=True, slots=True)
class APResult:
    """Summary of one evaluation.

    Attributes:
        ap: average precision at the accumulator's IoU threshold.
        num_gt: ground-truth boxes seen.
        num_pred: predictions seen.
        max_recall: recall with every prediction kept.
    """

    ap: float
    num_gt: int
    num_pred: int
    max_recall: float


class DetectionAPAccumulator:
    """Collects per-frame predictions and ground truth; `result()` gives the AP."""

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self.reset()

    def reset(self) -> None:
        self._tp: list[np.ndarray] = []
        self._score: list[np.ndarray] = []
        self._num_gt = 0

    def add_frame(
        self, pred_xyxy: np.ndarray, pred_score: np.ndarray, gt_xyxy: np.ndarray, ignore_xyxy: np.ndarray | None = None
    ) -> None:
        """Match one frame's predictions to its ground truth (one match per gt box).

        Unmatched predictions that overlap an ignore region at the IoU
        threshold are dropped instead of counted as false positives.
        """
        pred_score = np.asarray(pred_score, np.float32).reshape(-1)
        pred = np.asarray(pred_xyxy, np.float32).reshape(-1, 4)
        gt = np.asarray(gt_xyxy, np.float32).reshape(-1, 4)
        self._num_gt += gt.shape[0]
        tp = np.zeros(pred_score.shape[0], bool)
        if pred_score.size and gt.shape[0]:
            iou = iou_matrix(pred, gt)
            taken = np.zeros(gt.shape[0], bool)
            for i in np.argsort(-pred_score, kind="stable"):
                candidates = np.where(taken, -1.0, iou[i])
                j = int(np.argmax(candidates))
                if candidates[j] >= self.iou_threshold:
                    taken[j] = True
                    tp[i] = True
        keep = np.ones(tp.shape[0], bool)
        if ignore_xyxy is not None and len(ignore_xyxy) and pred_score.size:
            on_ignored = iou_matrix(pred, np.asarray(ignore_xyxy, np.float32).reshape(-1, 4)).max(axis=1)
            keep = tp | (on_ignored < self.iou_threshold)
        self._tp.append(tp[keep])
        self._score.append(pred_score[keep])

    def result(self) -> APResult:
        tp = np.concatenate(self._tp) if self._tp else np.zeros(0, bool)
        score = np.concatenate(self._score) if self._score else np.zeros(0, np.float32)
        recall = float(tp.sum() / self._num_gt) if self._num_gt else 0.0
        return APResult(average_precision(tp, score, self._num_gt), self._num_gt, int(tp.size), recall)
