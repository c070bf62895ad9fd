"""Object filters: limits, exclusion by ground point, confirmation, eviction."""

from __future__ import annotations

import numpy as np
import pytest

from agent.rules.geometry import points_in_polygon
from agent.tracking.object_filter import ObjectFilter, ObjectFilterSettings
from agent.values.detections import Tracks


def _tracks(boxes: list[list[float]], scores: list[float], classes: list[int], ids: list[int]) -> Tracks:
    return Tracks(np.asarray(boxes, np.float32), np.asarray(scores), np.asarray(classes), np.asarray(ids))


PERSON = [100, 100, 140, 200]  # 40 x 100, area 4000


@pytest.mark.parametrize(
    ("settings", "passes"),
    [
        (ObjectFilterSettings(min_area_px=5000), False),
        (ObjectFilterSettings(min_area_px=3000, max_area_px=5000), True),
        (ObjectFilterSettings(max_area_fraction=0.01), False),  # 4000 / 307200 = 0.013
        (ObjectFilterSettings(min_area_fraction=0.01), True),
        (ObjectFilterSettings(aspect_ratio_range=(0.3, 0.7)), True),
        (ObjectFilterSettings(aspect_ratio_range=(0.8, 3.0)), False),
        (ObjectFilterSettings(min_score_by_class=((0, 0.7),)), False),
        (ObjectFilterSettings(min_score_by_class=((2, 0.9),)), True),
    ],
)
def test_limits(settings: ObjectFilterSettings, passes: bool) -> None:
    f = ObjectFilter(settings, (640, 480))
    assert f.accepted(_tracks([PERSON], [0.6], [0], [1])).tolist() == [passes]


def test_exclusion_uses_bottom_centre() -> None:
    # The polygon covers y 190..300: the feet (120, 200) are inside, the head is not.
    zone = ((0.0, 190.0), (640.0, 190.0), (640.0, 300.0), (0.0, 300.0))
    f = ObjectFilter(ObjectFilterSettings(exclusion_polygons_px=(zone,)), (640, 480))
    far = [100, 50, 140, 150]
    assert f.accepted(_tracks([PERSON, far], [0.9, 0.9], [0, 0], [1, 2])).tolist() == [False, True]


def test_confirmation_over_frames_and_forgetting() -> None:
    f = ObjectFilter(ObjectFilterSettings(confirm_frames=3, forget_after_updates=5), (640, 480))
    blip = _tracks([PERSON], [0.9], [0], [7])
    steady = _tracks([PERSON, [300, 100, 340, 200]], [0.9, 0.9], [0, 0], [7, 8])
    assert len(f.update(blip)) == 0  # a one-frame object never reaches the rules
    out = [f.update(steady) for _ in range(3)]
    assert out[0].track_id.tolist() == [] and out[1].track_id.tolist() == [7]
    assert out[2].track_id.tolist() == [7, 8]
    empty = Tracks.empty()
    for _ in range(7):
        f.update(empty)
    assert len(f.update(steady)) == 0  # counts of long-gone ids were forgotten


def test_points_in_polygon() -> None:
    tri = np.array([[0, 0], [10, 0], [0, 10]], float)
    pts = np.array([[1, 1], [6, 6], [-1, 2], [2, 7]], float)
    assert points_in_polygon(pts, tri).tolist() == [True, False, False, True]
