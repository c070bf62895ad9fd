"""Replaying a clip with the detector a frame or two ahead of tracking: same output, errors where they happen.

Outside regions mode `replay_file` runs the motion gate and the detector on
a thread of their own; what it reports must be what the same pipeline gives
frame by frame in one thread, and nothing of that thread may outlive it.
"""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from agent.alerts.schema import Alert
from agent.config import SiteConfig, load_config
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.clip_replay import looked_frames, replay_file, replay_pipeline
from agent.runtime.pipeline import FrameResult
from agent.sources import FileReplay
from agent.values.frames import Frame

EVAL_CONFIG = Path(__file__).resolve().parents[1] / "evaluation" / "vtest_rules.yaml"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FRAMES = 80  # 8 s of the walkway: intrusions into the centre square and crossings of the line


def _config(tmp_path: Path, mode: str) -> SiteConfig:
    target = tmp_path / "site.yaml"
    shutil.copy(EVAL_CONFIG, target)
    return load_config(target, [f"cameras.0.motion.mode={mode}", "detector.intra_op_threads=1"])


def _replayed(config: SiteConfig, vtest_avi: Path) -> tuple[list[FrameResult], list[Alert], set[str]]:
    """Each frame's result, every alert, and the names of the threads that ran meanwhile."""
    results: list[FrameResult] = []
    threads: set[str] = set()

    def on_frame(result: FrameResult, total: int) -> None:
        results.append(result)
        threads.update(t.name for t in threading.enumerate())

    replay_file(
        config,
        config.cameras[0],
        vtest_avi,
        dispatcher=dispatcher_from_config(config),
        start_utc=START,
        on_frame=on_frame,
        max_frames=FRAMES,
    )
    return results, [a for r in results for a in r.alerts], threads


def _one_thread(config: SiteConfig, vtest_avi: Path) -> list[FrameResult]:
    pipeline = replay_pipeline(config, config.cameras[0])
    camera = config.cameras[0]
    clip = FileReplay(camera.id, vtest_avi, detect_fps=camera.detect_fps, start_utc=START)
    return [pipeline.process(f) for f in clip if f.frame_index < FRAMES]


@pytest.mark.parametrize(
    ("mode", "clip"),
    [
        ("always", "vtest.avi"),
        ("on_motion", "vtest.avi"),
        # A street the zone and line were not drawn for: tracks and alerts of another scene.
        ("on_motion", "TUD-Stadtmitte/TUD-Stadtmitte.mp4"),
    ],
)
def test_a_replay_reports_what_the_pipeline_gives_frame_by_frame(
    tmp_path: Path, assets_dir: Path, mode: str, clip: str
) -> None:
    video = assets_dir / "videos" / clip
    config = _config(tmp_path, mode)
    replayed, alerts, threads = _replayed(config, video)
    inline = _one_thread(config, video)

    assert "replay-walkway.detector" in threads
    assert alerts, "people walk through the zone and across the line in the first seconds"
    assert [r.frame_index for r in replayed] == [r.frame_index for r in inline]
    for ahead, alone in zip(replayed, inline, strict=True):
        assert np.array_equal(ahead.tracks.track_id, alone.tracks.track_id)
        assert np.allclose(ahead.tracks.box_xyxy_px, alone.tracks.box_xyxy_px)
    assert alerts == [a for r in inline for a in r.alerts]
    assert not any(t.name.startswith("replay-walkway.") for t in threading.enumerate())


def test_in_regions_mode_the_detector_waits_for_the_tracks(tmp_path: Path, vtest_avi: Path) -> None:
    # The crops are planned around the previous frame's tracks, so looking ahead would change them.
    config = _config(tmp_path, "regions")
    replayed, _, threads = _replayed(config, vtest_avi)

    assert not replay_pipeline(config, config.cameras[0]).looks_ahead
    assert "replay-walkway.detector" not in threads
    assert len(replayed) == len(_one_thread(config, vtest_avi))


def test_a_frame_the_detector_refuses_raises_where_it_came(tmp_path: Path, vtest_avi: Path) -> None:
    config = _config(tmp_path, "always")
    pipeline = replay_pipeline(config, config.cameras[0])
    good = list(islice(FileReplay("walkway", vtest_avi, start_utc=START), 3))
    grey = Frame("walkway", 3, good[0].image_bgr[:, :, 0].copy(), good[0].ts_utc, 0.3)

    followed = []
    with looked_frames(pipeline, [*good, grey], name="test") as looked, pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        for seen in looked:
            followed.append(pipeline.follow(seen).frame_index)
    assert followed == [0, 1, 2]
    assert not any(t.name == "test.detector" for t in threading.enumerate())
