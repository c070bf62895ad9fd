"""`edge-agent preview`: the config drawn where it says, at the frame's own size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.cli.main import main
from agent.config import load_config
from agent.integrator.drawing import MOTION_BGR, line_side_points, palette_bgr
from agent.rules.geometry import side_of_line

# From vtest_rules.yaml: zone "centre" spans x 0.375-0.625, y 0.33-0.67; line "divide" is x = 0.62.
ZONE_X = (0.375, 0.625)
ZONE_Y = (0.33, 0.67)


def _first_frame(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


def _preview(config: Path, source: Path, out: Path, *extra: str) -> np.ndarray:
    code = main(["preview", "--config", str(config), "--source", str(source), "--out", str(out), *extra])
    assert code == 0
    image = cv2.imread(str(out))
    assert image is not None
    return image


@pytest.mark.parametrize("clip", ["videos/vtest.avi", "videos/TUD-Stadtmitte/TUD-Stadtmitte.mp4"])
def test_normalised_zone_lands_where_the_config_says_at_any_resolution(
    walkway_config: Path, assets_dir: Path, tmp_path: Path, clip: str
) -> None:
    source = assets_dir / clip
    frame = _first_frame(source)
    h, w = frame.shape[:2]
    picture = _preview(walkway_config, source, tmp_path / "preview.png", "--no-motion")

    assert picture.shape == frame.shape
    zone_bgr = np.array(palette_bgr(0))
    # The top edge, at a third of its width (away from the name label at the first vertex).
    edge_x = round(w * (ZONE_X[0] + (ZONE_X[1] - ZONE_X[0]) * 0.6))
    edge_y = round(h * ZONE_Y[0])
    assert np.array_equal(picture[edge_y, edge_x], zone_bgr)
    # Inside: the picture tinted a quarter of the way toward the zone colour.
    ix, iy = round(w * 0.45), round(h * 0.6)
    expected = frame[iy, ix] * 0.75 + zone_bgr * 0.25
    assert np.abs(picture[iy, ix].astype(float) - expected).max() <= 1.0
    # Far from every shape and label: untouched.
    fx, fy = round(w * 0.9), round(h * 0.1)
    assert np.array_equal(picture[fy, fx], frame[fy, fx])


def test_line_side_labels_sit_on_the_side_the_rules_call_a_and_b(walkway_config: Path) -> None:
    line = load_config(walkway_config).cameras[0].lines[0]
    ends = np.array(line.points) * np.array([768, 576])
    side_a, side_b = line_side_points(ends)
    distance, _ = side_of_line(np.array([side_a, side_b]), ends[0], ends[1])
    assert distance[0] < 0 < distance[1]  # negative is side A in agent.rules.geometry


def test_motion_regions_of_walking_people_are_drawn(walkway_config: Path, vtest_avi: Path, tmp_path: Path) -> None:
    plain = _preview(walkway_config, vtest_avi, tmp_path / "plain.png", "--no-motion")
    with_motion = _preview(walkway_config, vtest_avi, tmp_path / "motion.png", "--frames", "20")

    motion_pixels = np.all(with_motion == np.array(MOTION_BGR), axis=2) & ~np.all(plain == np.array(MOTION_BGR), axis=2)
    assert motion_pixels.sum() > 200  # region outlines and grid ticks


def test_unreachable_live_camera_fails_with_a_clear_message(
    walkway_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.png"
    code = main(
        [
            "preview",
            "--config",
            str(walkway_config),
            "--source",
            "rtsp://127.0.0.1:9/cam",
            "--out",
            str(out),
            "--timeout",
            "1",
        ]
    )

    assert code == 1
    assert "no frame from rtsp://127.0.0.1:9/cam within 1 s" in capsys.readouterr().err
    assert not out.exists()
