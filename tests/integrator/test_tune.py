"""`edge-agent tune`: a cached sweep reports what a plain replay at the same settings alerts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.config import load_config
from agent.delivery.jws import open_envelope
from agent.delivery.routing import OutgoingAlert
from agent.integrator.tune import DetectionCache, TuneGrid, cache_detections, scaled_durations, sweep
from agent.runtime.assembly import dispatcher_from_config
from agent.runtime.clip_replay import replay_file

FRAMES = 100  # the walkway has intrusion and crossing incidents in its first 10 s
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cache(walkway_config: Path, vtest_avi: Path) -> DetectionCache:
    config = load_config(walkway_config)
    return cache_detections(config, config.cameras[0], vtest_avi, min_score=0.3, start_utc=START, max_frames=FRAMES)


def _replay_counts(config_path: Path, vtest_avi: Path, overrides: list[str]) -> tuple[Counter[str], Counter[str]]:
    """Alerts and incidents per rule of a plain replay."""
    config = load_config(config_path, overrides)
    messages: list[OutgoingAlert] = []
    replay_file(
        config,
        config.cameras[0],
        vtest_avi,
        dispatcher=dispatcher_from_config(config),
        start_utc=START,
        on_message=messages.append,
        max_frames=FRAMES,
    )
    details = [json.loads(open_envelope(m.payload).payload)["detection"] for m in messages]
    return Counter(d["rule"] for d in details), Counter(
        d["rule"] for d in {d["incident_id"]: d for d in details}.values()
    )


@pytest.mark.parametrize(
    ("score", "factor", "overrides"),
    [
        (0.35, 1.0, []),
        (0.6, 3.0, ["detector.score_threshold=0.6", "cameras.0.rules.0.min_duration_s=3.0"]),
    ],
)
def test_sweep_point_matches_a_plain_replay_at_the_same_settings(
    cache: DetectionCache, walkway_config: Path, vtest_avi: Path, score: float, factor: float, overrides: list[str]
) -> None:
    config = load_config(walkway_config)
    camera = config.cameras[0]
    (point,) = sweep(cache, config, camera, TuneGrid((score,), (factor,)))
    alerts, incidents = _replay_counts(walkway_config, vtest_avi, overrides)

    assert sum(alerts.values()) > 0
    assert {o.rule: o.alerts for o in point.outcomes} == {r.name: alerts[r.name] for r in camera.rules}
    assert {o.rule: o.incidents for o in point.outcomes} == {r.name: incidents[r.name] for r in camera.rules}
    assert scaled_durations(camera, factor).rules[0].min_duration_s == 1.0 * factor


def test_sweep_refuses_thresholds_the_cache_never_kept(cache: DetectionCache, walkway_config: Path) -> None:
    from agent.errors import ConfigError

    config = load_config(walkway_config)
    with pytest.raises(ConfigError):
        sweep(cache, config, config.cameras[0], TuneGrid((0.2,), (1.0,)))


def test_tune_command_prints_a_row_per_grid_point_and_rule_with_scores(
    walkway_config: Path, vtest_avi: Path, assets_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = assets_dir / "videos" / "PETS09-S2L1" / "gt" / "gt.txt"
    code = main(
        [
            "tune",
            "--config",
            str(walkway_config),
            "--source",
            str(vtest_avi),
            "--gt",
            str(gt),
            "--max-frames",
            "40",
            "--scores",
            "0.35,0.5",
            "--duration-factors",
            "1,2",
        ]
    )
    out = capsys.readouterr().out

    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.startswith(("0.35", "0.50"))]
    assert len(rows) == 2 * 2 * 2  # scores x factors x rules
    assert {r[2] for r in rows} == {"centre-intrusion", "divide-crossing"}
    assert all(r[7] != "-" and r[8] != "-" for r in rows)  # precision and recall for both kinds
    assert "one detection pass" in out
