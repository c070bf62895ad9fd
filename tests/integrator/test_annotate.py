"""`edge-agent replay --annotate`: the clip as the pipeline saw it, readable by any player."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.cli.main import main
from agent.delivery.jws import open_envelope

FRAMES = 40  # the walkway's first intrusion starts at frame 13 (1.3 s at 10 fps)


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def _is_red(bgr: np.ndarray) -> bool:
    b, g, r = (int(v) for v in bgr)
    return r > 150 and g < 90 and b < 90


@pytest.fixture(scope="module")
def annotated(walkway_config: Path, vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("annotate")
    video = folder / "walkway.mp4"
    code = main(
        [
            "replay",
            "--config",
            str(walkway_config),
            "--source",
            str(vtest_avi),
            "--max-frames",
            str(FRAMES),
            "--out",
            str(folder / "alerts.jsonl"),
            "--annotate",
            str(video),
        ]
    )
    assert code == 0
    return video, (folder / "alerts.jsonl").read_text()


def test_annotated_video_has_every_processed_frame_at_the_clip_size(
    annotated: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    video, _ = annotated
    cap = cv2.VideoCapture(str(video))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()

    assert size == (768, 576)
    assert len(_frames(video)) == FRAMES


def test_zone_turns_red_and_a_banner_shows_when_its_incident_starts(annotated: tuple[Path, str]) -> None:
    video, lines = annotated
    alerts = [json.loads(open_envelope(line.encode()).payload) for line in lines.splitlines()]
    assert any(a["detection"]["phase"] == "start" and a["detection"]["rule"] == "centre-intrusion" for a in alerts)
    frames = _frames(video)
    # The zone's top edge (y = 0.33 * 576), median over a stretch so a passing box does not decide.
    edge = lambda f: np.median(f[190, 330:440], axis=0)  # noqa: E731

    assert not _is_red(edge(frames[5]))
    assert _is_red(edge(frames[FRAMES - 1]))
    assert not _is_red(np.median(frames[5][11], axis=0))
    assert _is_red(np.median(frames[20][11], axis=0))  # start banner across the top


def test_replay_help_says_annotated_frames_stay_on_the_machine(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "never published and never leaves the box" in text
