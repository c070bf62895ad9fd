"""Capacity on the guarded site: 16 cameras, 12 of them mostly idle, each lever of the agent on and off.

The workload is `benchmarks.guarded_site` (video files read like cameras:
file sources looped and played at their own 15 fps by the live reader; the
agent looks at 5 fps). Every run is the real agent (`AgentService`: shared
detector, delivery, signing, a local Mosquitto, the product's default
`max_cpu_fraction` 0.9) in a fresh child process, for one pass of the
files: it starts when every camera has delivered a frame and stops at the
files' duration, so a walker is seen once. Each camera has one zone over
the whole picture and an intrusion rule on people (1 s inside; updates
every 600 s, so an incident is two messages, its start and its end).

Measured in the child, over the run after `WARMUP_S` (the idle cameras have
had time to fall idle): the agent's CPU as a share of the 2-core box
(process user + system time over wall time) beside the box's own; RSS at
the end; each camera's looked-at frame rate (frames through its pipeline
per second) while something moves: over the whole window for a busy
camera, and from 1 s after a walker enters to when it leaves for an idle
one (its first look at 1 fps may come up to 1 s late); the idle cameras'
own CPU (`CameraStats.cpu_ms_per_s` while `idle`, as % of one core).

Alerts: every message the run signed is in its audit log; the same files
are replayed one by one through `agent.runtime.clip_replay.replay_file`
(what `edge-agent replay` runs: every frame the detect rate keeps, nothing
skipped for time) with the same camera config, and the messages per camera
of the two are compared: a camera with fewer messages live lost an alert to
load (or to idling).

Levers, at 16 cameras: `motion.mode` regions vs on_motion (whole frame),
`motion.idle_after_s` 5 s (idle_fps 1) vs none, the INT8 copy of the model
(`agent.detection.quantize`, calibrated on vtest.avi) vs float. The cameras
vs CPU plot runs 4, 8, 12 and 16 cameras (one busy in four) with every lever
on and with none.
"""

from __future__ import annotations

__all__ = ["RunSpec", "alerts_per_camera", "replay_messages", "run_child", "section", "site_config"]

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

from benchmarks.guarded_site import CameraClip, GuardedSite
from benchmarks.report import Plot, Section, Table

REPO = Path(__file__).resolve().parents[1]
ASSETS = (REPO / ".." / "shared" / "assets").resolve()
DETECT_FPS, IDLE_AFTER_S, IDLE_FPS = 5.0, 5.0, 1.0
WARMUP_S = 8.0
WAKE_S = 1.0 / IDLE_FPS


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run: how many cameras and which levers are on."""

    cameras: int
    regions: bool = True
    idle: bool = True
    model: str = "yolox-nano-416"

    @property
    def label(self) -> str:
        parts = ["regions" if self.regions else "whole frame", "idle 1 fps" if self.idle else "no idle"]
        return ", ".join(parts + ([self.model] if self.model != "yolox-nano-416" else []))


def camera_config(clip: CameraClip, spec: RunSpec, *, loop: bool = True) -> dict[str, object]:
    motion: dict[str, object] = {"mode": "regions" if spec.regions else "on_motion"}
    if spec.idle:
        motion |= {"idle_after_s": IDLE_AFTER_S, "idle_fps": IDLE_FPS}
    return {
        "id": clip.camera_id,
        "source": str(clip.path),
        "loop": loop,
        "detect_fps": DETECT_FPS,
        "motion": motion,
        "zones": [{"name": "all", "points": [[0.01, 0.01], [0.99, 0.01], [0.99, 0.99], [0.01, 0.99]]}],
        "rules": [
            {
                "kind": "intrusion",
                "name": "person",
                "zone": "all",
                "min_duration_s": 1.0,
                "update_interval_s": 600,
                "end_after_s": 2,
                "cooldown_s": 0,
            }
        ],
    }


def site_config(workdir: Path, site: GuardedSite, spec: RunSpec, port: int) -> Path:
    name = f"{spec.cameras}-{'r' if spec.regions else 'w'}{'i' if spec.idle else 'n'}-{spec.model}"
    run_dir = workdir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in run_dir.glob("*"):
        if old.is_file() and old.suffix in (".sqlite", ".jsonl", ".head", ".sqlite-wal", ".sqlite-shm"):
            old.unlink()
    doc = {
        "site": {"id": "guarded", "name": "guarded site", "location": {"lat": 0.0, "lon": 0.0}},
        "cameras": [camera_config(c, spec) for c in site.first(spec.cameras)],
        "detector": {"model": spec.model, "classes": ["person"], "intra_op_threads": 2},
        "mqtt": {"host": "127.0.0.1", "port": port, "connect_timeout_s": 5},
        "outbox": {"path": str(run_dir / "outbox.sqlite")},
        "signing": {"key_file": str(workdir / "key.pem")},
        "policies": {"audit_log": str(run_dir / "audit.jsonl"), "pseudonym_key_file": str(workdir / "pseudonym.key")},
        "runtime": {"state_dir": str(run_dir / "run"), "stats_interval_s": 0},
    }
    path = run_dir / "site.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _camera_level(topic: str) -> str:
    """The camera level of `<prefix>/<site>/<camera>/alerts/<rule>` (the camera's pseudonym)."""
    levels = topic.split("/")
    return levels[levels.index("alerts") - 1] if "alerts" in levels else ""


def alerts_per_camera(audit_log: Path) -> dict[str, int]:
    """Messages per camera (topic level: the camera's pseudonym) in an audit log."""
    from agent.privacy.audit import read_records

    counts: Counter[str] = Counter()
    if audit_log.is_file():
        for record in read_records(audit_log):
            if record.data.get("message_id"):
                counts[_camera_level(str(record.data.get("topic", "")))] += 1
    return dict(counts)


def replay_messages(config_path: Path, clips: tuple[CameraClip, ...]) -> dict[str, tuple[str, int]]:
    """Per camera id: its topic level and its messages when its file is replayed alone
    (`replay_file`, the camera's own config, the run's keys)."""
    from agent.config import load_config
    from agent.delivery.routing import OutgoingAlert
    from agent.runtime.assembly import dispatcher_from_config
    from agent.runtime.clip_replay import replay_file

    config = load_config(config_path)
    out: dict[str, tuple[str, int]] = {}
    for clip in clips:
        camera = next(c for c in config.cameras if c.id == clip.camera_id)
        topics: list[str] = []

        def keep(message: OutgoingAlert, seen: list[str] = topics) -> None:
            seen.append(message.topic)

        replay_file(
            config,
            camera,
            clip.path,
            dispatcher=dispatcher_from_config(config),
            start_utc=datetime.now(UTC),
            on_message=keep,
        )
        out[clip.camera_id] = (_camera_level(topics[0]) if topics else "", len(topics))
    return out


def _sample(service: object) -> dict[str, tuple[float, int, bool, float]]:
    stats = service.latest_stats  # type: ignore[attr-defined]
    if stats is None:
        return {}
    return {c.camera_id: (time.monotonic(), c.frames_processed, c.idle, c.cpu_ms_per_s) for c in stats.cameras}


def measure(
    config_path: Path, duration_s: float, walks: dict[str, list[tuple[float, float]] | None]
) -> dict[str, object]:
    """Child process: run the agent for one pass of the files and measure it (see the module docstring)."""
    from agent.config import load_config
    from agent.logs import configure_logging
    from agent.runtime.service import AgentService

    configure_logging("warning")
    config = load_config(config_path)
    proc = psutil.Process()
    service = AgentService(config)
    runner = threading.Thread(target=service.run, name="bench-agent", daemon=True)
    runner.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = service.latest_stats
        if stats is not None and all(c.frames_processed > 0 for c in stats.cameras):
            break
        time.sleep(0.05)
    started = time.monotonic() - 0.5  # the readers started before the first frames went through
    series: list[dict[str, tuple[float, int, bool, float]]] = []
    cpu0 = box0 = None
    load = []
    while time.monotonic() < started + duration_s:
        time.sleep(0.5)
        series.append(_sample(service))
        if cpu0 is None and time.monotonic() >= started + WARMUP_S:
            cpu0, box0, t0 = proc.cpu_times(), psutil.cpu_times(), time.monotonic()
            load.append(os.getloadavg()[0])
    cpu1, box1, t1 = proc.cpu_times(), psutil.cpu_times(), time.monotonic()
    load.append(os.getloadavg()[0])
    rss = proc.memory_info().rss
    last = service.latest_stats
    service.stop()
    runner.join(60)
    if cpu0 is None or box0 is None or last is None:
        return {"error": "the run ended before the warm-up did"}
    cores = len(os.sched_getaffinity(0))
    busy = lambda t: t.user + t.system  # noqa: E731
    box_busy = sum(box1) - box1.idle - box1.iowait - (sum(box0) - box0.idle - box0.iowait)
    return {
        "cpu": (busy(cpu1) - busy(cpu0)) / (t1 - t0) / cores,
        "box_cpu": box_busy / max(1e-9, sum(box1) - sum(box0)),
        "rss": rss,
        "rate_scale": last.rate_scale,
        "moving_fps": _moving_fps(series, started, duration_s, walks),
        "idle_cpu_ms_per_s": _idle_cpu(series, started),
        "load": load,
        "frames_detected": {c.camera_id: c.frames_detected for c in last.cameras},
    }


def _rate(series: list[dict[str, tuple[float, int, bool, float]]], cam: str, a: float, b: float) -> float | None:
    inside = [s[cam] for s in series if cam in s and a <= s[cam][0] <= b]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 1.0:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def _moving_fps(
    series: list[dict[str, tuple[float, int, bool, float]]],
    started: float,
    duration_s: float,
    walks: dict[str, list[tuple[float, float]] | None],
) -> dict[str, float]:
    """Per camera: looked-at frames per second while something moves (busy: the whole window;
    an idle camera that nobody walks through has none)."""
    out = {}
    for cam, intervals in walks.items():
        if intervals is None:
            rate = _rate(series, cam, started + WARMUP_S, started + duration_s)
            if rate is not None:
                out[cam] = rate
            continue
        rates = [r for a, b in intervals if (r := _rate(series, cam, started + a + WAKE_S, started + b)) is not None]
        if rates:
            out[cam] = min(rates)
    return out


def _idle_cpu(series: list[dict[str, tuple[float, int, bool, float]]], started: float) -> float | None:
    """Mean `cpu_ms_per_s` of the cameras while idle (after the 5 s window is all idle time)."""
    values = [v[3] for s in series for v in s.values() if v[2] and v[0] > started + WARMUP_S]
    return sum(values) / len(values) if values else None


def run_child(config: Path, duration_s: float, clips: tuple[CameraClip, ...], env: dict[str, str]) -> dict[str, object]:
    """Run `measure` in a fresh interpreter; its JSON result."""
    # None: a busy camera (always something moving); a list: an idle camera's walks (maybe none).
    walks = {c.camera_id: [(w.start_s, w.end_s) for w in c.walks] if c.kind == "idle" else None for c in clips}
    args = [sys.executable, "-m", "benchmarks.guarded_capacity", str(config), str(duration_s), json.dumps(walks)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=duration_s + 240)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"capacity run failed: {done.stderr.strip()[-1500:]}")
    return dict(json.loads(lines[-1]))


def section(
    site: GuardedSite,
    specs: list[RunSpec],
    results: dict[RunSpec, dict[str, Any]],
    replays: dict[tuple[bool, str], dict[str, tuple[str, int]]],
    duration_s: float,
    quick: bool,
) -> Section:
    """The capacity table and the cameras vs CPU plot."""
    rows = []
    for spec in specs:
        r = results[spec]
        fps, kinds = r["moving_fps"], {c.camera_id: c.kind for c in site.cameras}
        idle_fps = [v for k, v in fps.items() if kinds[k] == "idle"]
        busy_fps = [v for k, v in fps.items() if kinds[k] == "busy"]
        replay = replays.get((spec.regions, spec.model))
        lost = None
        if replay is not None:
            lost = sum(
                max(0, n - r["live"].get(level, 0))
                for cam, (level, n) in replay.items()
                if int(cam[-2:]) < spec.cameras
            )
        idle_cpu = r["idle_cpu_ms_per_s"]
        rows.append(
            (
                spec.cameras,
                spec.label,
                f"{r['cpu']:.0%}",
                f"{r['box_cpu']:.0%}",
                min(busy_fps) if busy_fps else None,
                min(idle_fps) if idle_fps else None,
                None if idle_cpu is None else f"{idle_cpu / 10:.1f}%",
                round(r["rss"] / 2**20),
                r["rate_scale"],
                sum(r["live"].values()),
                None if replay is None else sum(n for cam, (_, n) in replay.items() if int(cam[-2:]) < spec.cameras),
                lost,
                " / ".join(f"{v:.1f}" for v in r["load"]),
            )
        )
    table = Table(
        f"Guarded site (seed {site.seed}, {duration_s:g} s of video per run): each lever on and off",
        (
            "cameras",
            "levers",
            "agent CPU (box)",
            "box CPU",
            "busy cam fps (min)",
            "idle cam fps while walker (min)",
            "idle cam CPU (% of 1 core)",
            "RSS MiB",
            "rate scale",
            "alert messages live",
            "replayed one by one",
            "lost live",
            "load avg start / end",
        ),
        tuple(rows),
        note=f"Detect rate 5 fps. CPU over the run after {WARMUP_S:g} s. fps = frames looked at per second "
        "while something moves (busy: whole window; idle camera: from 1 s after a walker enters until it "
        "leaves, worst walk). Replays (replay_file, every kept frame, regions/whole frame as the run) only "
        "for the 16-camera runs with idle on; 'lost live' counts messages a camera sent fewer live than "
        "replayed." + (" Quick: 4 and 16 cameras only." if quick else ""),
    )
    counts = sorted({s.cameras for s in specs})
    series = []
    for name, regions, idle in (
        ("every lever on (regions, idle)", True, True),
        ("none (whole frame, no idle)", False, False),
    ):
        values = tuple(
            next(
                (
                    results[s]["cpu"] * 100
                    for s in specs
                    if (s.cameras, s.regions, s.idle, s.model) == (n, regions, idle, "yolox-nano-416")
                ),
                float("nan"),
            )
            for n in counts
        )
        series.append((name, values))
    plot = Plot(
        "capacity_cpu.png",
        "line",
        "Guarded site: cameras vs agent CPU (detect 5 fps, 1 busy camera in 4)",
        tuple(str(n) for n in counts),
        tuple(series),
        "agent CPU, % of the 2-core box",
        "cameras",
    )
    on = results[specs[counts.index(16)]] if 16 in counts else None
    headline = ()
    if on is not None:
        headline = (
            ("guarded site, 16 cameras, every lever on", f"agent CPU {on['cpu']:.0%}, RSS {on['rss'] / 2**20:.0f} MiB"),
        )
    return Section("capacity", "Capacity: cameras vs CPU", (table,), (plot,), headline=headline)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    result = measure(Path(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3]))
    print(json.dumps(result))
