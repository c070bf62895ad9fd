"""CameraPipeline on real footage with the real detector: alerts, frame-size changes, the motion gate, lifecycle.

The walkers of vtest.avi (768x576, 10 fps, kept at 5 fps) cross the west
half of the walkway in its first seconds: an intrusion incident starts at
about 1.6 s of the clip and is still open at 2 s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.config import CameraConfig, DetectorConfig, SiteInfo, TrackerConfig
from agent.detection.detector import ObjectDetector
from agent.rules.geometry import anchor_points
from agent.runtime.assembly import camera_pipeline, detector_from_config, tracker_from_config
from agent.runtime.pipeline import CameraPipeline, FrameResult
from agent.sources import FileReplay
from agent.values.frames import Frame

SITE = SiteInfo.model_validate({"id": "s1", "name": "Site", "location": {"lat": 51.0, "lon": 0.0}})
# The demo's zone: the west half of the walkway, where people walk from the first frame on.
WALKWAY_WEST = [[0.0, 0.34], [0.5, 0.34], [0.5, 0.56], [0.0, 0.47]]
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
# Frames up to 2 s of the clip: the first incident has started and not yet ended.
UNTIL_INCIDENT_OPEN = 11


@pytest.fixture(scope="module")
def detector() -> Iterator[ObjectDetector]:
    with detector_from_config(DetectorConfig(model="yolox-nano-416", intra_op_threads=1)) as detector:
        yield detector


@pytest.fixture(scope="module")
def walk(vtest_avi: Path) -> list[Frame]:
    """The first 6 s of vtest.avi at 5 fps."""
    return list(islice(FileReplay("walkway", vtest_avi, detect_fps=5.0), 30))


def _camera(zone_points: list[list[float]], **fields: Any) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "walkway",
            "source": "vtest.avi",
            "zones": [{"name": "walkway-west", "points": zone_points}],
            "rules": [
                {
                    "kind": "intrusion",
                    "name": "west-intrusion",
                    "zone": "walkway-west",
                    "classes": ["person"],
                    "min_duration_s": 1.0,
                    "update_interval_s": 5,
                    "end_after_s": 1,
                    "cooldown_s": 1,
                }
            ],
            **fields,
        }
    )


def _pipeline(detector: ObjectDetector, camera: CameraConfig | None = None) -> CameraPipeline:
    camera = camera or _camera(WALKWAY_WEST)
    return camera_pipeline(camera, SITE, detector, tracker_from_config(TrackerConfig()), status="Test")


def _resized(frame: Frame, size_wh: tuple[int, int]) -> Frame:
    image = cv2.resize(frame.image_bgr, size_wh, interpolation=cv2.INTER_AREA)
    return Frame(frame.camera_id, frame.frame_index, image, frame.ts_utc, frame.ts_monotonic_s)


def _story(results: list[FrameResult]) -> list[tuple[int, str, str, int]]:
    """What the alerts said, frame by frame, without their ids."""
    return [(r.frame_index, a.detection.phase, a.detection.rule, a.detection.count) for r in results for a in r.alerts]


def test_walkers_crossing_the_zone_raise_an_intrusion(detector: ObjectDetector, walk: list[Frame]) -> None:
    pipeline = _pipeline(detector)

    frames = walk[:UNTIL_INCIDENT_OPEN]
    results = [pipeline.process(f) for f in frames]

    alerts = [a for r in results for a in r.alerts]
    assert [(a.detection.phase, a.msgType) for a in alerts] == [("start", "Alert")]
    start = alerts[0]
    assert (start.detection.rule, start.detection.zone, start.detection.class_name) == (
        "west-intrusion",
        "walkway-west",
        "person",
    )
    assert start.status == "Test" and start.detection.count >= 1 and start.detection.camera_id == "walkway"
    # The frame that raised it carries its picture and the people in it, for a snapshot policy.
    frame, raising = next((f, r) for f, r in zip(frames, results, strict=True) if r.alerts)
    assert raising.moment is not None and raising.moment.image_bgr is frame.image_bgr
    assert len(raising.moment.person_box_xyxy_px) >= 1
    assert all(r.moment is None for r in results if not r.alerts)
    assert pipeline.occupancy["walkway-west"].get("person", 0) >= 1


def test_finish_ends_the_open_incident(detector: ObjectDetector, walk: list[Frame]) -> None:
    pipeline = _pipeline(detector)
    assert pipeline.finish() == ()  # nothing seen, nothing to end

    started = [a for f in walk[:UNTIL_INCIDENT_OPEN] for a in pipeline.process(f).alerts]
    ended = pipeline.finish()

    assert [a.detection.phase for a in started] == ["start"]
    assert [(a.detection.phase, a.msgType, a.detection.count) for a in ended] == [("end", "Update", 0)]
    assert ended[0].detection.incident_id == started[0].detection.incident_id
    # Ended at the last frame's time: the incident spans no further than what was seen.
    assert ended[0].detection.last_seen <= walk[UNTIL_INCIDENT_OPEN - 1].ts_utc
    assert pipeline.finish() == ()  # nothing left open


def test_a_frame_size_change_rebuilds_the_per_size_stages(detector: ObjectDetector, walk: list[Frame]) -> None:
    # The mask is normalised, so its pixel polygon depends on the frame size: built for 768x576,
    # it would cover the whole of a 384x288 frame and drop every object.
    left_half = {"name": "left-half", "points": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]}
    pipeline = _pipeline(detector, _camera(WHOLE_FRAME, masks=[left_half]))
    for frame in walk[:6]:
        pipeline.process(frame)
    assert pipeline.motion_counters.frames_inspected == 6

    small = [pipeline.process(_resized(f, (384, 288))) for f in walk[6:20]]

    # A new motion gate for the new size: its counters start again.
    assert pipeline.motion_counters.frames_inspected == 14
    assert pipeline.last_motion is not None
    assert (pipeline.last_motion.regions_xyxy_px <= np.array([384, 288, 384, 288])).all()
    tracks = [r.tracks for r in small if len(r.tracks)]
    assert len(tracks) >= 5, "objects in the resized frames must be tracked, not rejected"
    boxes = np.vstack([t.box_xyxy_px for t in tracks])
    assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= 384).all() and (boxes[:, [1, 3]] <= 288).all()
    # The mask follows the new size: objects stand in the right half only.
    assert (anchor_points(boxes.astype(np.float64))[:, 0] >= 192).all()


def test_when_the_gate_skips_the_detector_the_previous_tracks_stand(
    detector: ObjectDetector, walk: list[Frame]
) -> None:
    # No luma change reaches 254 after the blur: past its 5 warm-up frames the gate sees no motion.
    camera = _camera(WHOLE_FRAME, motion={"mode": "on_motion", "pixel_threshold": 254})
    pipeline = _pipeline(detector, camera)

    results = [pipeline.process(f) for f in walk[:16]]

    counters = pipeline.motion_counters
    assert (counters.frames_inspected, counters.frames_detected) == (16, 5)
    assert pipeline.last_motion is not None and not pipeline.last_motion.has_motion
    last_detected = results[4].tracks
    assert len(last_detected) >= 1
    for r in results[5:]:
        assert np.array_equal(r.tracks.box_xyxy_px, last_detected.box_xyxy_px)
        assert np.array_equal(r.tracks.track_id, last_detected.track_id)
    # The people kept in place keep counting: their dwell passes min_duration_s on skipped frames.
    assert [a.detection.phase for r in results[5:] for a in r.alerts] == ["start"]


def test_reset_forgets_everything_seen(detector: ObjectDetector, walk: list[Frame]) -> None:
    pipeline = _pipeline(detector)
    first = [pipeline.process(f) for f in walk[:UNTIL_INCIDENT_OPEN]]
    ids_before = {int(t) for r in first for t in r.tracks.track_id}
    assert _story(first) and pipeline.occupancy["walkway-west"]

    pipeline.reset()

    assert pipeline.motion_counters.frames_inspected == 0 and pipeline.last_motion is None
    assert pipeline.finish() == ()  # the open incident is gone with the rest, not ended
    again = [pipeline.process(f) for f in walk[:UNTIL_INCIDENT_OPEN]]
    # The same frames tell the same story as on a new pipeline, with no track carried over.
    new_pipeline = _pipeline(detector)
    fresh = [new_pipeline.process(f) for f in walk[:UNTIL_INCIDENT_OPEN]]
    assert _story(again) == _story(fresh) == _story(first)
    for a, b in zip(again, fresh, strict=True):
        assert np.array_equal(a.tracks.box_xyxy_px, b.tracks.box_xyxy_px)
    assert not ids_before & {int(t) for r in again for t in r.tracks.track_id}


def test_a_new_frame_size_warns_about_shapes_drawn_in_pixels(
    detector: ObjectDetector, walk: list[Frame], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)  # configure_logging may have cut it
    masks = [{"name": "lamp", "units": "pixels", "points": [[300, 0], [340, 0], [340, 200], [300, 200]]}]
    pipeline = _pipeline(detector, _camera(WALKWAY_WEST, masks=masks))
    with caplog.at_level(logging.WARNING, logger="agent.runtime.pipeline"):
        pipeline.process(walk[0])
        assert "camera_pixel_geometry_mismatch" not in caplog.text
        pipeline.process(_resized(walk[1], (384, 288)))
    assert "event=camera_pixel_geometry_mismatch camera=walkway" in caplog.text
    assert "drawn_for_wh=768x576 frame_wh=384x288 shapes=lamp" in caplog.text


def test_a_new_frame_size_with_normalized_shapes_says_nothing(
    detector: ObjectDetector, walk: list[Frame], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(logging.getLogger("agent"), "propagate", True)
    pipeline = _pipeline(detector)
    with caplog.at_level(logging.WARNING, logger="agent.runtime.pipeline"):
        pipeline.process(walk[0])
        pipeline.process(_resized(walk[1], (384, 288)))
    assert "camera_pixel_geometry_mismatch" not in caplog.text


def test_regions_mode_raises_the_incidents_of_whole_frame_detection(detector: ObjectDetector, vtest_avi: Path) -> None:
    # The east half is masked, so the motion stays in the west half and regions mode looks at
    # crops around it instead of the whole frame; the zone's incidents must be the same ones.
    walk = list(islice(FileReplay("walkway", vtest_avi, detect_fps=5.0), 60))
    east = {"name": "east", "points": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}
    stories = {}
    for mode in ("on_motion", "regions"):
        pipeline = _pipeline(detector, _camera(WALKWAY_WEST, masks=[east], motion={"mode": mode}))
        alerts = [a for f in walk for a in pipeline.process(f).alerts] + list(pipeline.finish())
        stories[mode] = [(a.detection.phase, a.detection.first_seen) for a in alerts]
        if mode == "regions":
            assert pipeline.frames_on_crops >= len(walk) // 2, "most frames were detected on crops"
    starts = {mode: [t for phase, t in story if phase == "start"] for mode, story in stories.items()}
    assert len(starts["regions"]) == len(starts["on_motion"]) >= 2
    for whole, cropped in zip(starts["on_motion"], starts["regions"], strict=True):
        assert abs((cropped - whole).total_seconds()) <= 0.5
    assert all(sum(p == "end" for p, _ in story) == len(starts[m]) for m, story in stories.items())


def test_regions_mode_needs_a_detector_that_looks_at_crops(walk: list[Frame]) -> None:
    class WholeFrameOnly:
        class_names = ("person",)

        def detect(self, image_bgr: np.ndarray) -> Any:
            raise AssertionError("not reached")

    with pytest.raises(ValueError, match="regions needs a detector with detect_crops"):
        camera_pipeline(
            _camera(WALKWAY_WEST, motion={"mode": "regions"}),
            SITE,
            WholeFrameOnly(),
            tracker_from_config(TrackerConfig()),
        )
