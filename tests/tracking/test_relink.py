"""Re-linking: a person who comes out from behind an occluder further on than the motion
model expected keeps their id when they look the same, and a different-looking person
there gets a new one. Frames are drawn, then described as the pipeline describes them."""

from __future__ import annotations

import numpy as np

from agent.tracking import ByteTracker, TrackerSettings
from agent.tracking.appearance import appearance_descriptors, appearance_distance
from agent.values.detections import Detections

FRAME_HW = (360, 640)
RED, BLUE, GREEN, YELLOW = (40, 40, 200), (180, 60, 30), (40, 170, 40), (40, 200, 220)


def _scene(people: list[tuple[list[float], tuple[int, int, int], tuple[int, int, int]]], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.normal(128, 6, (*FRAME_HW, 3)).clip(0, 255).astype(np.uint8)
    for (x0, y0, x1, y1), top, bottom in people:
        mid = int((y0 + y1) / 2)
        image[int(y0) : mid, int(x0) : int(x1)] = top
        image[mid : int(y1), int(x0) : int(x1)] = bottom
    return image


def _box(x: float) -> list[float]:
    return [x, 100.0, x + 40.0, 200.0]


def _run(stranger_comes_out: bool) -> list[set[int]]:
    """A red/blue walker at 4 px per frame goes behind a post for 8 frames and comes out
    70 px beyond where a steady walk would have brought her (she hurried); a still
    bystander stands apart. Returns the ids reported per frame."""
    tracker = ByteTracker(TrackerSettings(min_hits=2, coast_updates=0))
    bystander = ([500.0, 150.0, 540.0, 250.0], GREEN, GREEN)
    seen = []
    for i in range(30):
        people = [bystander]
        if i < 10:
            people.append((_box(100 + 4 * i), RED, BLUE))
        elif i >= 18:
            colours = (GREEN, YELLOW) if stranger_comes_out else (RED, BLUE)
            people.append((_box(100 + 4 * i + 70), *colours))
        image = _scene(people, seed=i)
        boxes = np.asarray([p[0] for p in people], np.float32)
        dets = Detections(boxes, np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int32))
        tracks = tracker.update(dets, i / 10, appearance_descriptors(image, boxes))
        seen.append({int(t) for t in tracks.track_id})
    return seen


def test_a_person_coming_out_from_behind_a_post_keeps_their_id() -> None:
    seen = _run(stranger_comes_out=False)
    assert seen[5] == {1, 2} and seen[25] == seen[5], seen  # the same two ids before and after
    assert len(set().union(*seen)) == 2, seen  # no new id was handed out


def test_someone_else_coming_out_there_gets_a_new_id() -> None:
    seen = _run(stranger_comes_out=True)
    assert len(seen[25]) == 2 and not seen[25] >= seen[5], seen
    assert len(set().union(*seen)) == 3, seen


def test_without_appearance_the_tracker_does_not_guess() -> None:
    tracker = ByteTracker(TrackerSettings(min_hits=2, coast_updates=0))
    seen = []
    for i in range(30):
        boxes = [_box(100 + 4 * i)] if i < 10 else [_box(100 + 4 * i + 70)] if i >= 18 else []
        dets = Detections(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.full(len(boxes), 0.9, np.float32),
            np.zeros(len(boxes), np.int32),
        )
        seen.append({int(t) for t in tracker.update(dets, i / 10).track_id})
    assert seen[5] == {1} and seen[25] == {2}


def test_same_clothes_are_near_and_different_clothes_far() -> None:
    a = _scene([(_box(100), RED, BLUE)], seed=1)
    b = _scene([(_box(300), RED, BLUE)], seed=2)
    c = _scene([(_box(300), GREEN, YELLOW)], seed=3)
    da = appearance_descriptors(a, np.asarray([_box(100)], np.float32))
    db = appearance_descriptors(b, np.asarray([_box(300)], np.float32))
    dc = appearance_descriptors(c, np.asarray([_box(300)], np.float32))
    assert appearance_distance(da, db)[0, 0] < 0.2 < 0.8 < appearance_distance(da, dc)[0, 0]
    assert appearance_descriptors(a, np.asarray([[10, 10, 11, 11]], np.float32)).sum() == 0  # too small to describe
