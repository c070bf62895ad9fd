"""Alert accuracy on PETS09-S2L1 (vtest.avi) against its MOT ground truth.

The fast test runs the rules on the ground-truth boxes themselves: the rules
and the evaluation must then agree almost exactly, which checks both. The
slow test runs the product's `edge-agent replay` (detector, tracker, rules)
on the clip and scores its alerts.
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
from agent.evaluation.event_matching import alerts_from_ground_truth, evaluate_alerts
from agent.evaluation.mot import read_mot

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = HERE / "vtest_rules.yaml"
FRAME_WH, FPS = (768, 576), 10.0  # vtest.avi as OpenCV decodes it
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def gt(assets_dir: Path):  # type: ignore[no-untyped-def]
    return read_mot(assets_dir / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")


@pytest.mark.parametrize("frame_step", [1, 2])
def test_rules_on_ground_truth_boxes_agree_with_the_evaluation(gt, frame_step: int) -> None:  # type: ignore[no-untyped-def]
    config = load_config(CONFIG)
    camera = config.cameras[0]
    alerts = alerts_from_ground_truth(
        camera, config.site, gt, fps=FPS, frame_wh=FRAME_WH, start_utc=START, frame_step=frame_step
    )
    scores = {s.rule: s for s in evaluate_alerts(camera, gt, alerts, fps=FPS, frame_wh=FRAME_WH, start_utc=START)}
    assert scores["centre-intrusion"].true_events >= 3 and scores["divide-crossing"].true_events >= 20
    for s in scores.values():
        assert s.precision >= 0.97 and s.recall >= 0.97, s


@pytest.mark.slow
def test_replay_alerts_match_ground_truth(gt, vtest_avi: Path, models_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "alerts.jsonl"
    env = {**os.environ, "EDGE_AGENT_MODEL_PATH": str(models_dir), "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "agent",
        "replay",
        "--config",
        str(CONFIG),
        "--source",
        str(vtest_avi),
        "--start-time",
        START.isoformat(),
        "--out",
        str(out),
        "--set",
        f"signing.key_file={tmp_path / 'key.pem'}",
        "--set",
        f"outbox.path={tmp_path / 'outbox.sqlite'}",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    camera = load_config(CONFIG).cameras[0]
    alerts = list(alerts_from_jsonl(out))
    scores = {s.rule: s for s in evaluate_alerts(camera, gt, alerts, fps=FPS, frame_wh=FRAME_WH, start_utc=START)}
    # Measured: intrusion 1.0 / 1.0; divide 0.97 / 0.97 (recall was 0.90 while a missed frame
    # erased the side of a person passing behind the lamp post).
    assert scores["centre-intrusion"].precision == 1.0 and scores["centre-intrusion"].recall == 1.0
    divide = scores["divide-crossing"]
    assert divide.precision >= 0.9 and divide.recall >= 0.95, divide
