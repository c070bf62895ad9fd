"""`edge-agent validate` warns about zones too small or too large to be meant, and still exits 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main

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
        ("normalized", "[[0.5, 0.5], [0.55, 0.5], [0.55, 0.55]]", "covers 0.13% of the frame"),  # 0.00125
        ("normalized", "[[0, 0], [1, 0], [1, 1], [0, 1]]", "covers 100.0% of the frame"),
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
