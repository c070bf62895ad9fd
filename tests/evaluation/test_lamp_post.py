"""Alerts where the lamp post on PETS09-S2L1 (vtest.avi) hides people, against MOT ground truth.

A person walking behind the post is missed by the detector for a few
frames; the tracker keeps their track, unreported, and the rules must keep
what they know about them (side of a line, time in a zone) until they
reappear. The fast test checks the rules and the evaluation on the
ground-truth boxes themselves; the slow one scores `edge-agent replay`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.alerts.cap import alerts_from_jsonl
from agent.config import load_config
from agent.evaluation.event_matching import EventScores, alerts_from_ground_truth, evaluate_alerts
from agent.evaluation.mot import MotSequence, read_mot

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = HERE / "vtest_lamp_post.yaml"
FRAME_WH, FPS = (768, 576), 10.0  # vtest.avi as OpenCV decodes it
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def gt(assets_dir: Path) -> MotSequence:
    return read_mot(assets_dir / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")


def scores_of(alerts: list, gt: MotSequence) -> dict[str, EventScores]:  # type: ignore[type-arg]
    camera = load_config(CONFIG).cameras[0]
    scored = evaluate_alerts(camera, gt, alerts, fps=FPS, frame_wh=FRAME_WH, start_utc=START)
    return {s.rule: s for s in scored}


def test_rules_on_ground_truth_boxes_find_every_event(gt: MotSequence) -> None:
    config = load_config(CONFIG)
    alerts = alerts_from_ground_truth(config.cameras[0], config.site, gt, fps=FPS, frame_wh=FRAME_WH, start_utc=START)
    scores = scores_of(alerts, gt)
    assert scores["lamp-post-crossing"].true_events >= 25 and scores["post-intrusion"].true_events >= 5
    for s in scores.values():
        assert s.precision == 1.0 and s.recall == 1.0, s


@pytest.mark.slow
def test_replay_counts_the_people_the_lamp_post_hides(gt: MotSequence, vtest_avi: Path, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "agent", "replay", "--config", str(CONFIG), "--source", str(vtest_avi)]
    command += ["--start-time", START.isoformat(), "--out", str(out)]
    command += ["--set", f"signing.key_file={tmp_path / 'key.pem'}", "--set", f"outbox.path={tmp_path / 'ob.sqlite'}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = scores_of(list(alerts_from_jsonl(out)), gt)
    # Measured: lamp-post recall 28/29 = 0.97, precision 0.90 (recall was 8/29 = 0.28 while a
    # missed frame erased the side, 27/29 before a person coming out from behind the post was
    # re-linked to the track they had going in); the one it misses is a person who stands
    # behind the post, drifting across the line unseen, while two others pass.
    lamp = scores["lamp-post-crossing"]
    assert lamp.recall >= 0.95 and lamp.precision >= 0.85, lamp
    # Not tuned on: quarter 0.96 / 0.96 (was 0.96 / 0.93); post zone 1.0 / 1.0 (recall was 0.33:
    # the dwell clock restarted behind the post); walkway-west 1.0 / 1.0 (was 1.0 / 1.0).
    quarter = scores["quarter-crossing"]
    assert quarter.recall >= 0.95 and quarter.precision >= 0.9, quarter
    for zone in ("post-intrusion", "west-intrusion"):
        assert scores[zone].precision == 1.0 and scores[zone].recall == 1.0, scores[zone]
