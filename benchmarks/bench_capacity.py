"""How many cameras one box runs: N synthetic cameras in one agent process.

Each camera is a real clip from ../shared/assets/videos, transcoded once to
640x360 at 15 fps (MJPEG in AVI, decoded like a camera stream) and looped; the
agent detects at 5 fps. For each N the agent (`AgentService`, shared detector,
a local Mosquitto) runs in a fresh child process: after a warm-up it is
measured for `--measure-s` seconds. A run passes when every camera keeps
>= 95% of its detect rate and the agent's own CPU is at most 70% of the box.
The largest passing N is reported with and without motion gating, with RSS at
start and per added camera. `--soak-minutes M` instead runs `--soak-cameras`
cameras for M minutes and reports RSS growth.

Other processes on the box take CPU too: the figures are noisy on a shared
machine, and the box-wide CPU is printed beside the agent's own.

`collect` (what `make bench` runs) measures the guarded site instead:
16 cameras, 12 of them mostly idle (`benchmarks.guarded_site`), each lever
on and off, alerts checked against one-by-one replays
(`benchmarks.guarded_capacity` says how).

    python benchmarks/bench_capacity.py [--counts 1,4,8,12,16,20] [--measure-s 20]
    python benchmarks/bench_capacity.py --soak-minutes 30 --soak-cameras 8
    python benchmarks/bench_capacity.py --guarded-site [--quick] [--duration-s 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import psutil

from benchmarks.report import Section, print_section

REPO = Path(__file__).resolve().parents[1]
ASSETS = (REPO / ".." / "shared" / "assets").resolve()
CLIPS = [
    "videos/vtest.avi",
    "videos/TUD-Stadtmitte/TUD-Stadtmitte.mp4",
    "videos/intel/one-by-one-person-detection.mp4",
    "videos/intel/person-bicycle-car-detection.gif",
    "videos/intel/worker-zone-detection.gif",
]
SIZE_WH = (640, 360)
CAMERA_FPS = 15.0
DETECT_FPS = 5.0
MAX_FRAMES = 450  # 30 s per clip before it loops


def prepare_clips(workdir: Path) -> list[Path]:
    """Transcode each available clip to 640x360, 15 fps MJPEG (once per work dir)."""
    out = []
    for rel in CLIPS:
        src = ASSETS / rel
        if not src.is_file():
            continue
        dst = workdir / (src.stem + "_640x360.avi")
        if not dst.is_file():
            cap = cv2.VideoCapture(str(src))
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), CAMERA_FPS, SIZE_WH)
            for _ in range(MAX_FRAMES):
                ok, frame = cap.read()
                if not ok:
                    break
                writer.write(cv2.resize(frame, SIZE_WH, interpolation=cv2.INTER_AREA))
            writer.release()
            cap.release()
        out.append(dst)
    if not out:
        raise SystemExit(f"no clips found under {ASSETS / 'videos'}")
    return out


def site_config(
    workdir: Path, clips: list[Path], cameras: int, motion: str, port: int, detector: dict[str, object]
) -> Path:
    import yaml

    cams = [
        {
            "id": f"cam{i:02d}",
            "source": str(clips[i % len(clips)]),
            "loop": True,
            "detect_fps": DETECT_FPS,
            "motion": {"mode": motion},
        }
        for i in range(cameras)
    ]
    doc = {
        "site": {"id": "bench", "name": "capacity", "location": {"lat": 0.0, "lon": 0.0}},
        "cameras": cams,
        "detector": {**detector, "intra_op_threads": 2},
        "mqtt": {"host": "127.0.0.1", "port": port, "connect_timeout_s": 5},
        "outbox": {"path": str(workdir / f"outbox-{cameras}-{motion}.sqlite")},
        "signing": {"key_file": str(workdir / "key.pem")},
        "runtime": {"state_dir": str(workdir / "run"), "stats_interval_s": 0, "max_cpu_fraction": 1.0},
    }
    path = workdir / f"site-{cameras}-{motion}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_one(config_path: Path, warmup_s: float, measure_s: float, soak: bool) -> dict[str, object]:
    """Child process: run the agent, measure, print one JSON line."""
    from agent.config import load_config
    from agent.logs import configure_logging
    from agent.runtime.service import AgentService

    configure_logging("warning")
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    service = AgentService(load_config(config_path))
    runner = threading.Thread(target=service.run, name="bench-agent", daemon=True)
    runner.start()
    time.sleep(warmup_s)
    first = service.latest_stats
    proc.cpu_percent(None)
    psutil.cpu_percent(None)
    rss_series = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < measure_s:
        time.sleep(min(10.0, measure_s))
        rss_series.append(proc.memory_info().rss)
    elapsed = time.monotonic() - t0
    cpu = proc.cpu_percent(None) / 100 / len(os.sched_getaffinity(0))
    box_cpu = psutil.cpu_percent(None) / 100
    last = service.latest_stats
    service.stop()
    runner.join(30)
    if first is None or last is None:
        return {"error": "no stats"}
    before = {c.camera_id: c for c in first.cameras}
    fps = [(c.frames_processed - before[c.camera_id].frames_processed) / elapsed for c in last.cameras]
    detected = sum(c.frames_detected - before[c.camera_id].frames_detected for c in last.cameras)
    processed = sum(c.frames_processed - before[c.camera_id].frames_processed for c in last.cameras)
    infer = [c.inference_ms for c in last.cameras if c.inference_ms > 0]
    return {
        "cameras": len(last.cameras),
        "min_fps": min(fps),
        "mean_fps": sum(fps) / len(fps),
        "cpu": cpu,
        "box_cpu": box_cpu,
        "rss_start": rss_start,
        "rss_running": rss_series[0],
        "rss_end": rss_series[-1],
        "rate_scale": last.rate_scale,
        "detected_share": detected / processed if processed else 0.0,
        "inference_ms": sum(infer) / len(infer) if infer else 0.0,
        "rss_series": rss_series if soak else [],
    }


def child(config: Path, warmup_s: float, measure_s: float, soak: bool = False) -> dict[str, object]:
    args = [
        sys.executable,
        __file__,
        "--child",
        str(config),
        "--warmup-s",
        str(warmup_s),
        "--measure-s",
        str(measure_s),
    ] + (["--soak-child"] if soak else [])
    env = dict(os.environ, NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba")))
    env.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=warmup_s + measure_s + 120)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"child failed:\n{result.stderr[-2000:]}")
    return dict(json.loads(lines[-1]))


def passes(r: dict[str, object]) -> bool:
    return float(r["min_fps"]) >= 0.95 * DETECT_FPS and float(r["cpu"]) <= 0.70  # type: ignore[arg-type]


def capacity(args: argparse.Namespace, workdir: Path, clips: list[Path], port: int) -> None:
    counts = [int(c) for c in args.counts.split(",")]
    print(
        f"{'motion':<10} {'N':>3} {'min fps':>8} {'mean fps':>9} {'agent cpu':>9} {'box cpu':>8} "
        f"{'detected':>9} {'infer ms':>9} {'RSS MiB':>8} {'pass':>5}"
    )
    for motion in ("on_motion", "always"):
        best, rss = 0, []
        for n in counts:
            r = child(site_config(workdir, clips, n, motion, port, detector_of(args)), args.warmup_s, args.measure_s)
            ok = passes(r)
            rss.append((n, float(r["rss_running"]), float(r["rss_start"])))  # type: ignore[arg-type]
            print(
                f"{motion:<10} {n:>3} {r['min_fps']:>8.2f} {r['mean_fps']:>9.2f} {r['cpu']:>9.0%} "
                f"{r['box_cpu']:>8.0%} {r['detected_share']:>9.0%} {r['inference_ms']:>9.1f} "
                f"{float(r['rss_running']) / 2**20:>8.0f} {'yes' if ok else 'no':>5}",
                flush=True,
            )  # type: ignore[arg-type]
            if not ok:
                break
            best = n
        per_cam = (rss[-1][1] - rss[0][1]) / (rss[-1][0] - rss[0][0]) if len(rss) > 1 and rss[-1][0] > rss[0][0] else 0
        print(
            f"-> {motion}: largest N at 5 fps with agent CPU <= 70%: {best}; RSS before cameras "
            f"{rss[0][2] / 2**20:.0f} MiB, about {per_cam / 2**20:.1f} MiB per added camera\n",
            flush=True,
        )


def soak(args: argparse.Namespace, workdir: Path, clips: list[Path], port: int) -> None:
    r = child(
        site_config(workdir, clips, args.soak_cameras, "on_motion", port, detector_of(args)),
        args.warmup_s,
        args.soak_minutes * 60,
        soak=True,
    )
    series = [float(v) / 2**20 for v in r["rss_series"]]  # type: ignore[union-attr]
    growth = (series[-1] - series[0]) / series[0] if series else 0.0
    print(
        f"soak: {args.soak_cameras} cameras, {args.soak_minutes:g} min after {args.warmup_s:g} s warm-up; "
        f"min fps {r['min_fps']:.2f}, agent cpu {r['cpu']:.0%}"
    )
    print(f"RSS MiB every 10 s: {', '.join(f'{v:.0f}' for v in series)}")
    print(f"RSS growth first -> last sample: {growth:+.1%} (target <= 5%)")


def _int8_cache() -> Path | None:
    """A user cache holding `yolox-nano-416-int8` (quantized once, kept in .cache), or None when it cannot be made."""
    cache = REPO / ".cache" / "guarded-site" / "xdg"
    if not (cache / "edge-agent").exists():
        os.environ["XDG_CACHE_HOME"] = str(cache)
        try:
            from agent.detection.quantize import quantize_model

            quantize_model("yolox-nano-416", ASSETS / "videos" / "vtest.avi", frames=32)
        except Exception as err:  # noqa: BLE001 - the INT8 row says it could not run
            print(f"no INT8 model: {err}", file=sys.stderr)
            return None
        finally:
            os.environ.pop("XDG_CACHE_HOME", None)
    return cache


def collect(quick: bool = False, duration_s: float | None = None, seed: int = 1) -> Section:
    """The guarded site: CPU, looked-at rate while something moves, idle CPU, RSS and alerts per lever."""
    from agent.cli.demo import DemoBroker
    from benchmarks.guarded_capacity import RunSpec, alerts_per_camera, replay_messages, run_child, section, site_config
    from benchmarks.guarded_site import build_site

    duration_s = duration_s or (30.0 if quick else 40.0)
    site = build_site(seed, duration_s)
    counts = (4, 16) if quick else (4, 8, 12, 16)
    int8 = None if quick else _int8_cache()
    specs = [RunSpec(n) for n in counts] + [RunSpec(n, regions=False, idle=False) for n in counts]
    specs += [RunSpec(16, regions=False), RunSpec(16, idle=False)]
    specs += [RunSpec(16, model="yolox-nano-416-int8")] if int8 else []
    env = dict(os.environ, NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba")))
    env.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    workdir = REPO / ".cache" / "guarded-site" / "runs"
    results, replays = {}, {}
    with tempfile.TemporaryDirectory() as tmp, DemoBroker(Path(tmp)) as broker:
        for spec in specs:
            run_env = env | ({"XDG_CACHE_HOME": str(int8)} if "int8" in spec.model and int8 else {})
            config = site_config(workdir, site, spec, broker.port)
            result = run_child(config, duration_s, site.first(spec.cameras), run_env)
            result["live"] = alerts_per_camera(config.parent / "audit.jsonl")
            key = (spec.regions, spec.model)
            if spec.cameras == 16 and spec.idle and key not in replays:
                if int8 and "int8" in spec.model:
                    os.environ["XDG_CACHE_HOME"] = str(int8)
                replays[key] = replay_messages(config, site.cameras)
                os.environ.pop("XDG_CACHE_HOME", None)
            results[spec] = result
            (config.parent / "result.json").write_text(json.dumps(result, indent=1))
            print(f"{spec.cameras:>2} cameras, {spec.label}: cpu {result.get('cpu', 0):.0%}", flush=True)
    return section(site, specs, results, replays, duration_s, quick)


def detector_of(args: argparse.Namespace) -> dict[str, object]:
    """The detector section for the chosen model and input size."""
    return {"model": args.model, **({"input_size": args.input_size} if args.input_size else {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,4,8,12,16,20,24", help="camera counts to try, ascending")
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--measure-s", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 and 2 cameras, short windows")
    parser.add_argument("--model", default="yolox-nano-416", help="manifest model name (default: yolox-nano-416)")
    parser.add_argument("--input-size", type=int, help="input side for dynamic models, e.g. 320 with yolox-nano")
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    parser.add_argument("--soak-cameras", type=int, default=8)
    parser.add_argument("--guarded-site", action="store_true", help="the guarded-site table and plot (collect)")
    parser.add_argument("--duration-s", type=float, help="guarded site: seconds of video per run (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="guarded site: the workload's seed")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--soak-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.guarded_site:
        print_section(collect(args.quick, args.duration_s, args.seed))
        return 0
    if args.quick:
        args.counts, args.warmup_s, args.measure_s = "1,2", 4.0, 6.0
    sys.path.insert(0, str(REPO))
    if args.child:
        print(json.dumps(run_one(args.child, args.warmup_s, args.measure_s, args.soak_child)))
        return 0
    from agent.cli.demo import DemoBroker

    workdir = REPO / ".cache" / "bench-capacity"
    workdir.mkdir(parents=True, exist_ok=True)
    clips = prepare_clips(workdir)
    print(
        f"{len(clips)} clips at {SIZE_WH[0]}x{SIZE_WH[1]} {CAMERA_FPS:g} fps, detect {DETECT_FPS:g} fps, "
        f"{len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}, "
        f"model {args.model}{f'@{args.input_size}' if args.input_size else ''}"
    )
    with tempfile.TemporaryDirectory() as tmp, DemoBroker(Path(tmp)) as broker:
        if args.soak_minutes > 0:
            soak(args, workdir, clips, broker.port)
        else:
            capacity(args, workdir, clips, broker.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
