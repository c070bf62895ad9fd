"""What a config section accepts, its stage runs; what a stage would refuse, `validate` refuses first.

Each numeric field of the sections that feed a stage (motion gate, object
filter, tracker, detector, rules) is set to the edges its schema allows and
the real stage is built from it and run on a real frame: a value that passes
validation never fails later on a camera thread. Values the stages refuse
are reported by `load_config` with file, line and field.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from annotated_types import Ge, Gt, Interval, Le, Lt
from pydantic import BaseModel, ValidationError

from agent.config import (
    CameraConfig,
    CrowdingRuleConfig,
    DetectorConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    MotionConfig,
    ObjectFilterConfig,
    TrackerConfig,
    load_config,
)
from agent.detection.detector import ObjectDetector
from agent.errors import ConfigError
from agent.motion.gate import MotionGate
from agent.rules.ruleset import build_rules
from agent.runtime.assembly import detector_from_config, motion_settings, object_filter_settings, tracker_from_config
from agent.sources import FileReplay
from agent.tracking.object_filter import ObjectFilter
from agent.values.detections import Detections, Tracks

COCO_HEAD = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")
FRAME_WH = (768, 576)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def edges(model: type[BaseModel], name: str) -> list[float]:
    """The extreme values the schema lets through for one numeric field (open bounds: the nearest value inside)."""
    info = model.model_fields[name]
    is_int = info.annotation in (int, int | None)
    values: list[float] = []
    # A shared bound arrives as one Interval; it iterates as its Ge/Gt/Le/Lt parts.
    flat = [part for item in info.metadata for part in (item if isinstance(item, Interval) else [item])]
    for bound in flat:
        if isinstance(bound, Ge):
            values.append(bound.ge)  # type: ignore[arg-type]  # every bound in the config is a number
        elif isinstance(bound, Le):
            values.append(bound.le)  # type: ignore[arg-type]  # as above
        elif isinstance(bound, Gt):
            gt = float(bound.gt)  # type: ignore[arg-type]  # as above
            values.append(int(gt) + 1 if is_int else math.nextafter(gt, math.inf))
        elif isinstance(bound, Lt):
            lt = float(bound.lt)  # type: ignore[arg-type]  # as above
            values.append(int(lt) - 1 if is_int else math.nextafter(lt, -math.inf))
    return values


def numeric_cases(model: type[BaseModel]) -> list[tuple[str, float]]:
    return [(name, value) for name in model.model_fields for value in edges(model, name)]


def accepted(section: type[BaseModel], /, **fields: Any) -> BaseModel | None:
    """The section with these fields, or None where the schema itself refuses them (nothing reaches a stage)."""
    try:
        return section.model_validate(fields)
    except ValidationError:
        return None


@pytest.fixture(scope="module")
def frames(vtest_avi: Path) -> list[np.ndarray]:
    return [f.image_bgr for f in islice(FileReplay("cam", vtest_avi, detect_fps=5.0), 8)]


def camera_with(**fields: Any) -> CameraConfig:
    return CameraConfig.model_validate({"id": "cam", "source": "rtsp://10.0.0.5/s", **fields})


@pytest.mark.parametrize(("name", "value"), numeric_cases(MotionConfig))
def test_every_motion_value_the_schema_accepts_runs_in_the_gate(
    name: str, value: float, frames: list[np.ndarray]
) -> None:
    if accepted(MotionConfig, **{name: value}) is None:
        return
    camera = camera_with(motion={name: value})
    gate = MotionGate(motion_settings(camera, FRAME_WH))
    results = [gate.update(f) for f in frames]
    assert all(r.motion_fraction >= 0 for r in results)


@pytest.mark.parametrize(("name", "value"), numeric_cases(ObjectFilterConfig))
def test_every_filter_value_the_schema_accepts_runs_in_the_filter(name: str, value: float) -> None:
    if accepted(ObjectFilterConfig, **{name: value}) is None:
        return
    camera = camera_with(filters={name: value})
    f = ObjectFilter(object_filter_settings(camera, COCO_HEAD, FRAME_WH), FRAME_WH)
    boxes = np.array([[100, 100, 140, 200]], np.float32)
    tracks = Tracks(boxes, np.array([0.9], np.float32), np.array([0], np.int32), np.array([1], np.int64))
    f.update(tracks)


@pytest.mark.parametrize(
    "filters",
    [
        {"aspect_ratio_range": [2.0, 0.5]},
        {"aspect_ratio_range": [0.0, 1.0]},
        {"aspect_ratio_range": [0.3, 0.7], "confirm_frames": 1},
        {"min_score": {"person": 0.7}},
        {"min_area_fraction": 0.001, "max_area_fraction": 0.5},
    ],
)
def test_shaped_filter_values_the_schema_accepts_run_in_the_filter(filters: dict[str, Any]) -> None:
    if accepted(ObjectFilterConfig, **filters) is None:
        return
    camera = camera_with(filters=filters)
    ObjectFilter(object_filter_settings(camera, COCO_HEAD, FRAME_WH), FRAME_WH).update(Tracks.empty())


@pytest.mark.parametrize(("name", "value"), numeric_cases(TrackerConfig))
def test_every_tracker_value_the_schema_accepts_runs_in_the_tracker(name: str, value: float) -> None:
    config = accepted(TrackerConfig, **{name: value})
    if config is None:
        return
    assert isinstance(config, TrackerConfig)
    tracker = tracker_from_config(config)
    boxes = np.array([[100, 100, 140, 200]], np.float32)
    for i in range(3):
        tracker.update(Detections(boxes, np.array([0.9], np.float32), np.array([0], np.int32)), i * 0.2)


# yolox-nano has a dynamic input, so every input size the schema allows can be tried on it.
@pytest.mark.parametrize(("name", "value"), numeric_cases(DetectorConfig))
def test_every_detector_value_the_schema_accepts_loads_the_detector(
    name: str, value: float, frames: list[np.ndarray]
) -> None:
    config = accepted(DetectorConfig, model="yolox-nano", **{name: value})
    if config is None:
        return
    assert isinstance(config, DetectorConfig)
    detector: ObjectDetector = detector_from_config(config)
    detector.detect(frames[0])


RULES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (IntrusionRuleConfig, {"kind": "intrusion", "name": "r", "zone": "z"}),
    (LoiteringRuleConfig, {"kind": "loitering", "name": "r", "zone": "z"}),
    (CrowdingRuleConfig, {"kind": "crowding", "name": "r", "zone": "z"}),
    (LineCrossingRuleConfig, {"kind": "line_crossing", "name": "r", "line": "l"}),
]


@pytest.mark.parametrize(
    ("model", "base", "name", "value"),
    [(model, base, name, value) for model, base in RULES for name, value in numeric_cases(model)],
)
def test_every_rule_value_the_schema_accepts_runs_in_the_rule(
    model: type[BaseModel], base: dict[str, Any], name: str, value: float
) -> None:
    if accepted(model, **base, **{name: value}) is None:
        return
    camera = camera_with(
        zones=[{"name": "z", "points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}],
        lines=[{"name": "l", "points": [[0.5, 0.0], [0.5, 1.0]]}],
        rules=[{**base, name: value}],
    )
    rules = build_rules(camera, COCO_HEAD, "UTC")
    boxes = np.array([[300, 200, 340, 300]], np.float32)
    tracks = Tracks(boxes, np.array([0.9], np.float32), np.array([0], np.int32), np.array([1], np.int64))
    for i in range(3):
        rules.update(tracks, FRAME_WH, i * 0.2, T0)
    rules.finish(1.0, T0)


SITE = """\
site: {{id: s1, name: Site, location: {{lat: 51.0, lon: 0.0}}}}
cameras:
  - id: cam
    source: rtsp://10.0.0.5/stream
    {section}:
      {field}: {value}
"""


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        # 255: no luma difference is ever above it, so the gate refuses it (it would never see motion).
        ("motion", "pixel_threshold", "255"),
        ("filters", "aspect_ratio_range", "[2.0, 0.5]"),
        ("filters", "aspect_ratio_range", "[0, 1.0]"),
        ("filters", "min_score", "{person: 1.5}"),
        # Not a class the detector keeps: the filter would silently never apply it.
        ("filters", "min_score", "{forklift: 0.5}"),
    ],
)
def test_values_a_stage_refuses_are_config_errors_with_file_line_and_field(
    tmp_path: Path, section: str, field: str, value: str
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(section=section, field=field, value=value))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [issue] = info.value.issues
    assert (issue.file, issue.line) == (str(path), 6)
    assert issue.field.startswith(f"cameras.0.{section}.{field}")


@pytest.mark.parametrize(
    ("detector", "field", "reason"),
    [
        # yolox-nano-416 is a fixed 416x416 graph: the detector refuses to load at any other size.
        ("{model: yolox-nano-416, input_size: 320}", "detector.input_size", "fixed input of 416x416"),
        ("{model: yolox-nano-416, classes: [person, forklift]}", "detector.classes", "forklift"),
    ],
)
def test_detector_options_the_model_refuses_are_config_errors(
    tmp_path: Path, detector: str, field: str, reason: str
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(section="motion", field="mode", value="always") + f"detector: {detector}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [issue] = info.value.issues
    assert (issue.line, issue.field) == (7, field)
    assert reason in issue.reason
