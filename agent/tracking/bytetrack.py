"""ByteTrack-style multi-object tracker.

Each update predicts every track with a Kalman filter, then associates in
two stages: confident detections (`high_score` and up) with all confirmed
tracks (including lost ones, so an object that was hidden for a moment keeps
its id), then the weak detections (`low_score` up to `high_score`) with the
tracked tracks still unmatched (a partly hidden person scores low but is
still the same person). Detections left over that reach `new_track_score`
bring back a lost track, continue a tentative one or start a new one;
weaker ones never do, so a weak box can keep an object tracked but never
create one. A new track is confirmed after `min_hits` updates.

A confirmed track the detector misses is reported at its predicted box for
`coast_updates` more updates (with the score it last matched), so one
missed frame does not blink it out of the output; it keeps its id, unreported,
until `max_lost_s` or `max_lost_updates`, whichever comes first, so no state
outlives its object.

Given the boxes' appearance (`agent.tracking.appearance`), a track that is
confirmed near where a lost one vanished, and looks like it, takes the lost
track's id: a person who came out from behind a post further than the motion
model expected is still the same person to the rules. Appearance is learnt
only from confident boxes that overlap no other, so a passer-by's colours do
not leak into the memory of the person they hid.
"""

from __future__ import annotations

__all__ = ["ByteTracker", "TrackerSettings"]

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from agent.detection.box_ops import iou_matrix
from agent.tracking.appearance import DESCRIPTOR_SIZE, appearance_distance, relink_gate
from agent.tracking.assignment import match_by_iou
from agent.tracking.kalman import BoxKalman
from agent.values.detections import Detections, Tracks


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """Thresholds and lifetimes.

    Attributes:
        high_score: detections at or above this score are confident (first stage).
        low_score: detections below this are ignored; from it up to
            `high_score` they are matched in the second stage only.
        new_track_score: least score for a detection to start or confirm a
            track; weaker detections only continue confirmed tracks.
        min_iou_high: least IoU to match a confident detection (stage 1).
        min_iou_low: least IoU to match a weak detection (stage 2); stricter,
            since weak boxes are less reliable.
        min_iou_tentative: least IoU to continue a not-yet-confirmed track.
        min_hits: matched updates before a track is confirmed and reported.
        max_lost_s: seconds a lost track is kept for re-identification.
        coast_updates: updates a missed confirmed track is still reported,
            at its predicted box (0: report matched tracks only).
        max_lost_updates: updates a lost track is kept (bounds memory when
            timestamps stall).
        class_aware: only match detections and tracks of the same class.
        relink_max_distance: largest appearance distance (0-1) at which a newly
            confirmed track takes over a lost one's id; 0 turns re-linking off.
            On the ground-truth people of PETS09-S2L1 and TUD-Stadtmitte, the same
            person scored 0.22-0.40 and different people 0.35-0.60.
        appearance_memory: weight of the old appearance when a new box is learnt.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.35
    min_iou_high: float = 0.2
    min_iou_low: float = 0.5
    min_iou_tentative: float = 0.3
    min_hits: int = 2
    max_lost_s: float = 3.0
    max_lost_updates: int = 90
    coast_updates: int = 3
    class_aware: bool = True
    relink_max_distance: float = 0.45
    appearance_memory: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise ValueError("scores must satisfy 0 <= low_score <= high_score <= 1")
        if not 0.0 <= self.new_track_score <= 1.0:
            raise ValueError(f"new_track_score must be in [0, 1], got {self.new_track_score}")
        if self.min_hits < 1 or self.max_lost_updates < 0 or self.max_lost_s < 0 or self.coast_updates < 0:
            raise ValueError("min_hits must be >= 1 and lifetimes >= 0")
        if not (0.0 <= self.relink_max_distance <= 1.0 and 0.0 <= self.appearance_memory < 1.0):
            raise ValueError("relink_max_distance must be in [0, 1] and appearance_memory in [0, 1)")


# A box overlapping another this much or more may show part of the other object.
_ALONE_MAX_IOU = 0.1


class _State(IntEnum):
    TENTATIVE = 0
    TRACKED = 1
    LOST = 2


class _TrackTable:
    """Columnar state of every live track (rows are tracks)."""

    def __init__(self) -> None:
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.track_id = np.zeros(0, np.int64)
        self.class_id = np.zeros(0, np.int32)
        self.score = np.zeros(0, np.float32)
        self.state = np.zeros(0, np.int8)
        self.hits = np.zeros(0, np.int32)
        self.last_seen_s = np.zeros(0)
        self.lost_updates = np.zeros(0, np.int32)
        self.appearance = np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        self.has_appearance = np.zeros(0, np.bool_)

    _COLUMNS = (
        "mean",
        "cov",
        "track_id",
        "class_id",
        "score",
        "state",
        "hits",
        "last_seen_s",
        "lost_updates",
        "appearance",
        "has_appearance",
    )

    def __len__(self) -> int:
        return len(self.track_id)

    def keep(self, rows: np.ndarray) -> None:
        for name in self._COLUMNS:
            setattr(self, name, getattr(self, name)[rows])

    def append(self, other: _TrackTable) -> None:
        for name in self._COLUMNS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))


class ByteTracker:
    """Give detections stable ids across frames (one tracker per camera).

    Args:
        settings: thresholds and lifetimes.
    """

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._kalman = BoxKalman()
        self._table = _TrackTable()
        self._next_id = 1

    def reset(self) -> None:
        """Drop every track; ids keep increasing so none is ever reused."""
        self._table = _TrackTable()

    @property
    def live_track_count(self) -> int:
        """Tracks held in memory (tentative, tracked and lost)."""
        return len(self._table)

    @property
    def max_lost_s(self) -> float:
        """How long an unseen track keeps its id (state kept per track may live as long)."""
        return self.settings.max_lost_s

    @property
    def uses_appearance(self) -> bool:
        """Whether `update` does anything with the boxes' appearance (re-linking is on)."""
        return self.settings.relink_max_distance > 0.0

    @property
    def min_hits(self) -> int:
        """Matched updates a track has had by the time it is first reported."""
        return self.settings.min_hits

    def update(self, detections: Detections, ts_monotonic_s: float, appearance: np.ndarray | None = None) -> Tracks:
        """Advance every track by one frame; return the confirmed ones matched now or coasting.

        `appearance`: the detections' descriptors (rows aligned), for re-linking; None skips it.
        """
        s = self.settings
        t = self._table
        if len(t):
            t.mean, t.cov = self._kalman.predict(t.mean, t.cov)
        high = np.flatnonzero(detections.score >= s.high_score)
        low = np.flatnonzero((detections.score >= s.low_score) & (detections.score < s.high_score))
        matched_rows: list[np.ndarray] = []
        matched_dets: list[np.ndarray] = []

        confirmed = np.flatnonzero(t.state != _State.TENTATIVE)
        pairs, rest_tracks, rest_high = self._associate(confirmed, high, detections, s.min_iou_high)
        matched_rows.append(confirmed[pairs[:, 0]])
        matched_dets.append(high[pairs[:, 1]])

        still_tracked = confirmed[rest_tracks][t.state[confirmed[rest_tracks]] == _State.TRACKED]
        pairs, _, rest_low = self._associate(still_tracked, low, detections, s.min_iou_low)
        matched_rows.append(still_tracked[pairs[:, 0]])
        matched_dets.append(low[pairs[:, 1]])

        # What is left and scores well enough to start a track may first bring back a lost one
        # (a partly hidden person coming out from behind a post), then confirm a tentative
        # track, then start a new one.
        left = np.concatenate([high[rest_high], low[rest_low]])
        left = left[detections.score[left] >= s.new_track_score]
        lost = confirmed[rest_tracks][t.state[confirmed[rest_tracks]] == _State.LOST]
        pairs, _, rest_left = self._associate(lost, left, detections, s.min_iou_high)
        matched_rows.append(lost[pairs[:, 0]])
        matched_dets.append(left[pairs[:, 1]])
        left = left[rest_left]
        tentative = np.flatnonzero(t.state == _State.TENTATIVE)
        pairs, _, rest_new = self._associate(tentative, left, detections, s.min_iou_tentative)
        matched_rows.append(tentative[pairs[:, 0]])
        matched_dets.append(left[pairs[:, 1]])

        rows = np.concatenate(matched_rows).astype(np.int64)
        dets = np.concatenate(matched_dets).astype(np.int64)
        was_tentative = t.state[rows] == _State.TENTATIVE
        self._apply_matches(rows, dets, detections, ts_monotonic_s)
        taken_over = np.zeros(0, np.int64)
        if appearance is not None:
            self._learn_appearance(rows, dets, detections, appearance)
            taken_over = self._relink(rows[was_tentative & (t.state[rows] == _State.TRACKED)])
        self._age_and_evict(rows, ts_monotonic_s, taken_over)
        self._start_tracks(left[rest_new], detections, ts_monotonic_s)
        return self._report()

    def _associate(
        self, rows: np.ndarray, det_idx: np.ndarray, detections: Detections, min_iou: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = self._table
        boxes = self._kalman.to_xyxy(t.mean[rows]) if len(rows) else np.zeros((0, 4), np.float32)
        classes = (t.class_id[rows], detections.class_id[det_idx]) if self.settings.class_aware else (None, None)
        iou = iou_matrix(boxes, detections.box_xyxy_px[det_idx], *classes)
        return match_by_iou(iou, min_iou)

    def _apply_matches(self, rows: np.ndarray, dets: np.ndarray, detections: Detections, ts: float) -> None:
        if len(rows) == 0:
            return
        t = self._table
        t.mean[rows], t.cov[rows] = self._kalman.update(t.mean[rows], t.cov[rows], detections.box_xyxy_px[dets])
        t.score[rows] = detections.score[dets]
        t.hits[rows] += 1
        t.last_seen_s[rows] = ts
        t.lost_updates[rows] = 0
        confirm = (t.state[rows] != _State.TENTATIVE) | (t.hits[rows] >= self.settings.min_hits)
        t.state[rows[confirm]] = _State.TRACKED

    def _learn_appearance(
        self, rows: np.ndarray, dets: np.ndarray, detections: Detections, appearance: np.ndarray
    ) -> None:
        t = self._table
        boxes = detections.box_xyxy_px
        overlap = iou_matrix(boxes, boxes)
        np.fill_diagonal(overlap, 0.0)
        alone = overlap.max(axis=1, initial=0.0) < _ALONE_MAX_IOU
        described = np.asarray(appearance).sum(axis=1) > 0
        usable = (detections.score[dets] >= self.settings.high_score) & alone[dets] & described[dets]
        rows, dets = rows[usable], dets[usable]
        keep = self.settings.appearance_memory
        old = t.has_appearance[rows][:, None]
        t.appearance[rows] = np.where(
            old, keep * t.appearance[rows] + (1.0 - keep) * appearance[dets], appearance[dets]
        )
        t.has_appearance[rows] = True

    def _relink(self, born: np.ndarray) -> np.ndarray:
        """Give newly confirmed tracks the id of the lost track each looks most like; return the lost rows."""
        s, t = self.settings, self._table
        born = born[t.has_appearance[born]]
        lost = np.flatnonzero((t.state == _State.LOST) & t.has_appearance)
        if s.relink_max_distance <= 0.0 or len(born) == 0 or len(lost) == 0:
            return np.zeros(0, np.int64)
        allowed = relink_gate(t.mean[lost], t.lost_updates[lost], t.mean[born])
        if s.class_aware:
            allowed &= t.class_id[born][:, None] == t.class_id[lost][None, :]
        likeness = np.where(allowed, 1.0 - appearance_distance(t.appearance[born], t.appearance[lost]), 0.0)
        pairs, _, _ = match_by_iou(likeness, 1.0 - s.relink_max_distance)
        t.track_id[born[pairs[:, 0]]] = t.track_id[lost[pairs[:, 1]]]
        taken_over: np.ndarray = lost[pairs[:, 1]]
        return taken_over

    def _age_and_evict(self, matched_rows: np.ndarray, ts: float, taken_over: np.ndarray) -> None:
        s, t = self.settings, self._table
        unmatched = np.ones(len(t), bool)
        unmatched[matched_rows] = False
        t.lost_updates[unmatched] += 1
        t.state[unmatched & (t.state == _State.TRACKED)] = _State.LOST
        too_old = (ts - t.last_seen_s > s.max_lost_s) | (t.lost_updates > s.max_lost_updates)
        # A tentative track that misses one update was most likely a false positive.
        drop = (unmatched & (t.state == _State.TENTATIVE)) | ((t.state == _State.LOST) & too_old)
        drop[taken_over] = True  # its id lives on in the track that took it over
        t.keep(np.flatnonzero(~drop))

    def _report(self) -> Tracks:
        t = self._table
        matched_now = (t.state == _State.TRACKED) & (t.lost_updates == 0)
        coasting = (t.state == _State.LOST) & (t.lost_updates <= self.settings.coast_updates)
        rows = np.flatnonzero(matched_now | coasting)
        return Tracks(self._kalman.to_xyxy(t.mean[rows]), t.score[rows], t.class_id[rows], t.track_id[rows])

    def _start_tracks(self, det_idx: np.ndarray, detections: Detections, ts: float) -> None:
        n = len(det_idx)
        if n == 0:
            return
        new = _TrackTable()
        new.mean, new.cov = self._kalman.initiate(detections.box_xyxy_px[det_idx])
        new.track_id = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        new.class_id = detections.class_id[det_idx].copy()
        new.score = detections.score[det_idx].copy()
        confirmed_now = self.settings.min_hits <= 1
        new.state = np.full(n, _State.TRACKED if confirmed_now else _State.TENTATIVE, np.int8)
        new.hits = np.ones(n, np.int32)
        new.last_seen_s = np.full(n, ts)
        new.lost_updates = np.zeros(n, np.int32)
        new.appearance = np.zeros((n, DESCRIPTOR_SIZE), np.float32)
        new.has_appearance = np.zeros(n, np.bool_)
        self._table.append(new)
