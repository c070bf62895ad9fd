"""Rules benchmark: geometry kernels against their NumPy references, per-frame rule cost,
and alert accuracy on PETS09-S2L1 (vtest.avi) against its MOT ground truth.

    python benchmarks/bench_rules.py                       # kernels, rule cost, rules on gt boxes
    python benchmarks/bench_rules.py --replay              # also run `edge-agent replay` and score it

Prints tables; timings are medians over repeats on this machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.alerts.cap import alerts_from_jsonl  # noqa: E402
from agent.config import load_config  # noqa: E402
from agent.evaluation.event_matching import alerts_from_ground_truth, evaluate_alerts  # noqa: E402
from agent.evaluation.mot import read_mot  # noqa: E402
from agent.rules.geometry import (  # noqa: E402
    points_in_polygon,
    points_in_polygon_reference,
    side_of_line,
    side_of_line_reference,
)
from agent.rules.ruleset import build_rules  # noqa: E402
from agent.values.detections import Tracks  # noqa: E402
from benchmarks.report import Section, Table, spread  # noqa: E402

ASSETS = (REPO / ".." / "shared" / "assets").resolve()
CONFIG = REPO / "tests" / "evaluation" / "vtest_rules.yaml"
START = datetime(2026, 1, 1, tzinfo=UTC)


def median_us(fn: Callable[[], object], repeats: int = 2000) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e6


def kernels() -> None:
    rng = np.random.default_rng(0)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 8))
    poly = np.stack([400 + 150 * np.cos(angles), 300 + 150 * np.sin(angles)], axis=1)
    p1, p2 = np.array([100.0, 50.0]), np.array([600.0, 500.0])
    print("kernel                 points  numba_us  numpy_us  numpy/numba")
    for n in (20, 200, 5000):
        pts = rng.uniform(0, 800, (n, 2))
        for name, fast, ref in (
            ("point_in_polygon", lambda: points_in_polygon(pts, poly), lambda: points_in_polygon_reference(pts, poly)),
            ("side_of_line", lambda: side_of_line(pts, p1, p2), lambda: side_of_line_reference(pts, p1, p2)),
        ):
            a, b = median_us(fast), median_us(ref)
            print(f"{name:<20} {n:>8}  {a:8.1f}  {b:8.1f}  {b / a:11.1f}")


def rule_times_ms() -> tuple[int, list[float]]:
    """The demo rule set fed the PETS09 ground-truth tracks: (rule count, ms per frame)."""
    camera = load_config(CONFIG).cameras[0]
    seq = read_mot(ASSETS / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")
    rules = build_rules(camera, ("person",), "UTC")
    times = []
    for frame in range(1, seq.last_frame + 1):
        ids, boxes = seq.frames.get(frame, (np.zeros(0, np.int64), np.zeros((0, 4), np.float32)))
        tracks = Tracks(boxes, np.ones(len(ids)), np.zeros(len(ids)), ids)
        t_s = (frame - 1) / 10
        t = time.perf_counter()
        rules.update(tracks, (768, 576), t_s, START + timedelta(seconds=t_s))
        times.append((time.perf_counter() - t) * 1e3)
    return len(camera.rules), times


def rule_cost() -> None:
    count, times = rule_times_ms()
    print(
        f"\nrule set ({count} rules + occupancy) on gt tracks: median "
        f"{np.median(times) * 1e3:.0f} us/frame, p99 {np.percentile(times, 99) * 1e3:.0f} us/frame"
    )


def print_scores(title: str, scores: list) -> None:  # type: ignore[type-arg]
    print(f"\n{title}\nrule                kind  true  alerted  matched  precision  recall")
    for s in scores:
        print(
            f"{s.rule:<19} {s.kind:<5} {s.true_events:>5} {s.alert_events:>8} {s.matched_true:>8} "
            f"{s.precision:>10.3f} {s.recall:>7.3f}"
        )


def accuracy(replay: bool) -> None:
    config = load_config(CONFIG)
    camera = config.cameras[0]
    seq = read_mot(ASSETS / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")
    kw = {"fps": 10.0, "frame_wh": (768, 576), "start_utc": START}
    for step in (1, 2):
        alerts = alerts_from_ground_truth(camera, config.site, seq, frame_step=step, **kw)  # type: ignore[arg-type]
        print_scores(f"rules on ground-truth boxes, every {step} frame(s)", evaluate_alerts(camera, seq, alerts, **kw))  # type: ignore[arg-type]
    if not replay:
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "alerts.jsonl"
        env = {**os.environ, "EDGE_AGENT_MODEL_PATH": str(ASSETS / "models"), "PYTHONPATH": str(REPO)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "agent",
                "replay",
                "--config",
                str(CONFIG),
                "--source",
                str(ASSETS / "videos" / "vtest.avi"),
                "--start-time",
                START.isoformat(),
                "--out",
                str(out),
                "--set",
                f"signing.key_file={tmp}/key.pem",
                "--set",
                f"outbox.path={tmp}/outbox.sqlite",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        alerts = list(alerts_from_jsonl(out))
    print_scores(
        "edge-agent replay (yolox-nano-416, tracker, rules) on vtest.avi", evaluate_alerts(camera, seq, alerts, **kw)
    )  # type: ignore[arg-type]


def collect(quick: bool = False) -> Section:
    """Rule-set cost per frame and alert accuracy on ground-truth tracks (kernels: bench_kernels)."""
    count, times = rule_times_ms()
    config = load_config(CONFIG)
    camera = config.cameras[0]
    seq = read_mot(ASSETS / "videos" / "PETS09-S2L1" / "gt" / "gt.txt")
    med, p10, p90 = spread(times)
    cost = Table(
        "Rule set on PETS09 ground-truth tracks",
        ("rules", "median ms/frame", "p10-p90", "p99"),
        ((f"{count} rules + occupancy", med, f"{p10:.3f}-{p90:.3f}", float(np.percentile(times, 99))),),
        float_digits=3,
    )
    kw = {"fps": 10.0, "frame_wh": (768, 576), "start_utc": START}
    alerts = alerts_from_ground_truth(camera, config.site, seq, frame_step=1, **kw)  # type: ignore[arg-type]
    scores = evaluate_alerts(camera, seq, alerts, **kw)  # type: ignore[arg-type]
    acc = Table(
        "Alerts from ground-truth boxes vs true events",
        ("rule", "kind", "true", "alerted", "matched", "precision", "recall"),
        tuple((s.rule, s.kind, s.true_events, s.alert_events, s.matched_true, s.precision, s.recall) for s in scores),
        float_digits=3,
    )
    return Section(
        "rules",
        "Rules: cost and alert accuracy",
        (cost, acc),
        headline=(("rule set cost per frame (median)", f"{med:.3f} ms"),),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", action="store_true", help="also score a full replay of vtest.avi (about a minute)")
    args = parser.parse_args()
    kernels()
    rule_cost()
    accuracy(args.replay)


if __name__ == "__main__":
    main()
