"""`edge-agent validate` warns about zones too small or too large to be meant, and still exits 0.

Shares are printed rounded half up from their decimal value, so a zone exactly
on a half (0.125%) reads 0.13% wherever the float arithmetic lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main
from agent.integrator.zone_checks import percent_text

CONFIG = """
site: {{id: s1, name: Site, location: {{lat: 51.0, lon: 0.0}}}}
cameras:
  - id: cam
    source: {source}
    zones:
      - name: {name}
        units: {units}
        points: {points}
"""


def _validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], **fields: str) -> tuple[int, str]:
    path = tmp_path / "site.yaml"
    path.write_text(CONFIG.format(**fields))
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("units", "points", "warned"),
    [
        # Exactly on a half: 0.125% and 0.225% round up (half to even would give 0.12% and 0.22%).
        ("normalized", "[[0.5, 0.5], [0.55, 0.5], [0.55, 0.55]]", "covers 0.13% of the frame (under 0.5%)"),
        ("normalized", "[[0.1, 0.1], [0.15, 0.1], [0.15, 0.145], [0.1, 0.145]]", "covers 0.23% of the frame"),
        ("normalized", "[[0, 0], [1, 0], [1, 1], [0, 1]]", "covers 100.0% of the frame (over 95%)"),
        # 96.25% at one decimal: up to 96.3% (half to even: 96.2%).
        ("normalized", "[[0, 0], [1, 0], [1, 0.9625], [0, 0.9625]]", "covers 96.3% of the frame"),
        ("normalized", "[[0.2, 0.2], [0.6, 0.2], [0.6, 0.6]]", None),
        # vtest.avi is 768x576: a 20x20 px square is 0.09% of it.
        ("pixels", "[[100, 100], [120, 100], [120, 120], [100, 120]]", "covers 0.09% of the frame"),
        ("pixels", "[[0, 0], [760, 0], [760, 570], [0, 570]]", "covers 97.9% of the frame"),
        ("pixels", "[[100, 100], [400, 100], [400, 400]]", None),
    ],
)
def test_zone_size_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vtest_avi: Path, units: str, points: str, warned: str | None
) -> None:
    code, err = _validate(tmp_path, capsys, source=str(vtest_avi), name="door", units=units, points=points)

    assert code == 0
    if warned is None:
        assert "warning" not in err
    else:
        assert "warning:" in err and "zone 'door'" in err and warned in err


@pytest.mark.parametrize(
    ("fraction", "decimals", "text"),
    [
        # 0.125% as the arithmetic may deliver it: just under, exact, just over. All round up.
        (0.0012499999999999998, 2, "0.13%"),
        (0.00125, 2, "0.13%"),
        (0.0012500000000000002, 2, "0.13%"),
        (0.00145, 2, "0.15%"),
        # Off the half, the nearest value wins as usual.
        (0.0012499, 2, "0.12%"),
        (0.0012501, 2, "0.13%"),
        (0.000904224, 2, "0.09%"),
        (0.9625, 1, "96.3%"),
        (0.97925, 1, "97.9%"),
        (1.0, 1, "100.0%"),
        (0.005, 1, "0.5%"),
        (0.95, 0, "95%"),
    ],
)
def test_shares_round_half_up(fraction: float, decimals: int, text: str) -> None:
    assert percent_text(fraction, decimals) == text


def test_pixel_zone_of_a_stream_says_the_check_was_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _validate(
        tmp_path,
        capsys,
        source="rtsp://10.0.0.5/stream",
        name="gate",
        units="pixels",
        points="[[0, 0], [10, 0], [10, 10]]",
    )

    assert code == 0
    assert "zone 'gate': size check skipped" in err


@pytest.mark.parametrize(
    ("points", "warned"),
    [
        # vtest.avi is 768x576. Wholly below and right of it: nothing of it is in the picture.
        ("[[1000, 1000], [5000, 1000], [5000, 5000], [1000, 5000]]", "lies wholly outside the 768x576 frame"),
        # Half of a 200x200 square hangs over the right edge: 100x200 px inside, 4.5% of the frame.
        ("[[668, 100], [868, 100], [868, 300], [668, 300]]", "lies partly outside the 768x576 frame"),
    ],
)
def test_pixel_zones_outside_the_frame_are_measured_inside_it_and_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vtest_avi: Path, points: str, warned: str
) -> None:
    code, err = _validate(tmp_path, capsys, source=str(vtest_avi), name="door", units="pixels", points=points)

    assert code == 0
    assert "zone 'door'" in err and warned in err
    assert "100.0%" not in err


def test_a_zone_partly_outside_is_measured_by_its_part_inside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vtest_avi: Path
) -> None:
    # 400x600 px from the left edge down past the bottom: 400x576 inside = 52.1% of the frame, no size warning.
    points = "[[0, 0], [400, 0], [400, 600], [0, 600]]"
    code, err = _validate(tmp_path, capsys, source=str(vtest_avi), name="door", units="pixels", points=points)

    assert code == 0
    assert "lies partly outside the 768x576 frame; the part inside covers 52.1% of the frame" in err
    assert "too large" not in err and "too small" not in err
