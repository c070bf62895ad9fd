"""Soak benchmark: the live agent with several cameras for a long time, its memory and descriptors sampled.

Runs `edge-agent run` as a site would: `--cameras` cameras (4 by default)
looping the real clips in ../shared/assets at their own frame rate, detect
5 fps each, a whole-frame intrusion zone (so alerts flow), against a real
Mosquitto on a loopback port, with the metrics endpoint on. Every
`--sample-s` seconds it records the agent's resident memory (RSS) and
unique memory (USS), open file descriptors, threads and CPU; at the end it
reads the agent's own inference histogram and frame counters from
`/metrics`. The memory budget is 250 MB plus 20 MB per camera (MB = 10^6
bytes); growth is the slope of RSS over the second half of the run.

    python -m benchmarks.bench_soak                      # 30 minutes, 4 cameras (make bench)
    python -m benchmarks.bench_soak --duration-s 300     # 5 minutes
    python -m benchmarks.bench_soak --quick              # 60 s smoke run
    python -m benchmarks.bench_soak --config config/demo.yaml --duration-s 120   # a site's own config

With `--config` the agent runs that site config instead (its cameras looping,
broker, metrics and state redirected to the run's temporary folder).

Writes benchmarks/results/soak_memory.png and soak_descriptors.png (through
`make bench`, into REPORT.md as well).
"""

from __future__ import annotations

__all__ = ["BUDGET_BASE_MB", "BUDGET_PER_CAMERA_MB", "collect", "main", "soak"]

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
ASSETS = (REPO / ".." / "shared" / "assets").resolve()
sys.path.insert(0, str(REPO))

from benchmarks.report import Plot, Section, Table  # noqa: E402
from tests.brokers import MosquittoBroker, free_port  # noqa: E402
from tests.runtime.agent_process import camera, write_site_config  # noqa: E402

BUDGET_BASE_MB = 250.0
BUDGET_PER_CAMERA_MB = 20.0
CLIPS = (
    "videos/vtest.avi",
    "videos/TUD-Stadtmitte/TUD-Stadtmitte.mp4",
    "videos/intel/one-by-one-person-detection.mp4",
    "videos/vtest.avi",  # the walkway again: a second camera on a busy scene
)
_MB = 1e6


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    rss_mb: float
    uss_mb: float
    fds: int
    threads: int
    cpu_percent: float
    load_1m: float


@dataclass(frozen=True, slots=True)
class SoakResult:
    cameras: int
    duration_s: float
    samples: tuple[Sample, ...]
    inference_ms_mean: float
    frames: dict[str, float]
    alerts_delivered: float
    load_before: float
    load_after: float
    cores: int
    exit_code: int

    @property
    def budget_mb(self) -> float:
        return BUDGET_BASE_MB + BUDGET_PER_CAMERA_MB * self.cameras


def _metrics(port: int) -> dict[str, float]:
    """Sums of the agent's counters and histograms by sample name (all cameras together)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + (f"{{kind={s.labels['kind']}}}" if "kind" in s.labels else "")
            sums[key] = sums.get(key, 0.0) + s.value
    return sums


def _sample(proc: psutil.Process, t0: float) -> Sample:
    with proc.oneshot():
        full = proc.memory_full_info()
        return Sample(
            round(time.monotonic() - t0, 1),
            full.rss / _MB,
            full.uss / _MB,
            proc.num_fds(),
            proc.num_threads(),
            proc.cpu_percent(None),
            os.getloadavg()[0],
        )


def _site_config_args(config_file: Path, work: Path, broker_port: int, metrics_port: int) -> tuple[list[str], int]:
    """`run` arguments for a given site config, and its camera count: loop every camera, keep state in `work`."""
    doc = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    count = len(doc.get("cameras") or [])
    sets = {
        "mqtt.port": broker_port,
        "runtime.metrics.enabled": "true",
        "runtime.metrics.port": metrics_port,
        "runtime.stats_interval_s": 10,
        "runtime.state_dir": work / "run",
        "outbox.path": work / "outbox.sqlite",
        "signing.key_file": work / "key.pem",
        "policies.pseudonym_key_file": work / "pseudonym.key",
        "policies.audit_log": work / "audit.jsonl",
        **{f"cameras.{i}.loop": "true" for i in range(count)},
    }
    args = ["--config", str(config_file.resolve())]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return args, count


def soak(
    cameras: int,
    duration_s: float,
    sample_s: float,
    extra_env: dict[str, str] | None = None,
    config_file: Path | None = None,
) -> SoakResult:
    """Run the agent with `cameras` looping cameras (or `config_file`'s) for `duration_s`, sampled every `sample_s`."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="edge-soak-") as tmp:
        work = Path(tmp)
        metrics_port = free_port()
        with MosquittoBroker(work / "broker") as broker:
            if config_file is None:
                config = write_site_config(
                    work / "site.yaml",
                    port=broker.port,
                    site_id="soak-site",
                    cameras=[camera(f"cam{i}", str(ASSETS / CLIPS[i % len(CLIPS)])) for i in range(cameras)],
                    runtime={"metrics": {"enabled": True, "port": metrics_port}, "stats_interval_s": 10},
                )
                run_args = ["--config", str(config)]
            else:
                run_args, cameras = _site_config_args(config_file, work, broker.port, metrics_port)
            env = dict(os.environ, NUMBA_CACHE_DIR=str(REPO / ".cache" / "numba"), **(extra_env or {}))
            env.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
            log = (work / "agent.log").open("wb")
            agent = subprocess.Popen(
                [sys.executable, "-m", "agent", "--log-level", "warning", "run", *run_args],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            proc = psutil.Process(agent.pid)
            proc.cpu_percent(None)
            t0 = time.monotonic()
            samples: list[Sample] = []
            try:
                while time.monotonic() - t0 < duration_s and agent.poll() is None:
                    samples.append(_sample(proc, t0))
                    time.sleep(max(0.0, t0 + len(samples) * sample_s - time.monotonic()))
                if agent.poll() is not None:
                    raise RuntimeError(
                        f"the agent exited early ({agent.returncode}): {(work / 'agent.log').read_text()[-2000:]}"
                    )
                final = _metrics(metrics_port)
            finally:
                if agent.poll() is None:
                    agent.send_signal(signal.SIGTERM)
                    try:
                        agent.wait(60)
                    except subprocess.TimeoutExpired:
                        agent.kill()
                        agent.wait(10)
    count = final.get("edge_agent_inference_seconds_count", 0.0)
    kinds = ("detected", "no_motion", "rate_skipped", "dropped", "damaged")
    return SoakResult(
        cameras=cameras,
        duration_s=duration_s,
        samples=tuple(samples),
        inference_ms_mean=1e3 * final.get("edge_agent_inference_seconds_sum", 0.0) / count if count else float("nan"),
        frames={k: final.get(f"edge_agent_camera_frames_total{{kind={k}}}", 0.0) for k in kinds},
        alerts_delivered=final.get("edge_agent_outbox_delivered_total", 0.0),
        load_before=load_before,
        load_after=os.getloadavg()[0],
        cores=os.cpu_count() or 1,
        exit_code=agent.returncode,
    )


def _growth_mb_per_h(samples: tuple[Sample, ...]) -> float:
    """Slope of RSS over the second half of the run (the first half includes warm-up)."""
    half = [s for s in samples if s.t_s >= samples[-1].t_s / 2]
    if len(half) < 3:
        return float("nan")
    slope = np.polyfit([s.t_s for s in half], [s.rss_mb for s in half], 1)[0]
    return float(slope * 3600.0)


def _rows(r: SoakResult) -> tuple[tuple[str, str], ...]:
    after_warmup = [s for s in r.samples if s.t_s >= 30.0] or list(r.samples)
    rss = [s.rss_mb for s in after_warmup]
    fds = [s.fds for s in r.samples]
    wanted = r.frames["detected"] + r.frames["no_motion"] + r.frames["dropped"]
    return (
        ("cameras, duration", f"{r.cameras} cameras looping real clips at 5 fps, {r.duration_s / 60:.1f} min"),
        ("RSS after 30 s / max / end", f"{rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f} MB"),
        ("USS end", f"{after_warmup[-1].uss_mb:.0f} MB"),
        (
            "memory budget (250 MB + 20 MB per camera)",
            f"{r.budget_mb:.0f} MB: {'within' if max(rss) <= r.budget_mb else 'OVER'}",
        ),
        ("RSS growth, second half", f"{_growth_mb_per_h(r.samples):+.1f} MB/h"),
        ("open file descriptors min / max / end", f"{min(fds)} / {max(fds)} / {fds[-1]}"),
        ("threads end", f"{r.samples[-1].threads}"),
        ("agent CPU mean", f"{np.mean([s.cpu_percent for s in r.samples[1:]]):.0f}% of one core"),
        ("inference mean (the agent's histogram)", f"{r.inference_ms_mean:.1f} ms"),
        (
            "frames detected / no motion / skipped by rate / dropped",
            " / ".join(f"{r.frames[k]:.0f}" for k in ("detected", "no_motion", "rate_skipped", "dropped")),
        ),
        (
            "frames dropped (box too slow), share of frames wanted",
            f"{r.frames['dropped'] / wanted:.1%}" if wanted else "-",
        ),
        ("alerts delivered", f"{r.alerts_delivered:.0f}"),
        (
            "load average before / during (mean, max) / after",
            f"{r.load_before:.1f} / {np.mean([s.load_1m for s in r.samples]):.1f}, "
            f"{max(s.load_1m for s in r.samples):.1f} / {r.load_after:.1f} on {r.cores} cores",
        ),
    )


def _plots(r: SoakResult) -> tuple[Plot, ...]:
    # At most ~120 points a line: the line plot marks every point.
    step = max(1, len(r.samples) // 120)
    picked = r.samples[::step]
    labels = tuple(f"{s.t_s / 60:.2f}" for s in picked)
    return (
        Plot(
            "soak_memory.png",
            "line",
            f"Agent memory, {r.cameras} cameras, {r.duration_s / 60:.0f} min",
            labels,
            (
                ("RSS", tuple(s.rss_mb for s in picked)),
                ("USS", tuple(s.uss_mb for s in picked)),
                (f"budget {r.budget_mb:.0f} MB", tuple(r.budget_mb for _ in picked)),
            ),
            "MB",
            "minutes",
        ),
        Plot(
            "soak_descriptors.png",
            "line",
            f"Agent open file descriptors and threads, {r.cameras} cameras",
            labels,
            (("open fds", tuple(float(s.fds) for s in picked)), ("threads", tuple(float(s.threads) for s in picked))),
            "count",
            "minutes",
        ),
    )


def section(r: SoakResult) -> Section:
    rows = _rows(r)
    return Section(
        "soak",
        "Soak: memory and descriptors of the live agent",
        (Table("Soak", ("measure", "value"), rows),),
        _plots(r),
        notes=(
            "RSS counts the shared libraries' pages the process touched (onnxruntime, OpenCV, and LLVM "
            "when the kernels run in Numba's JIT); "
            "USS is what the agent alone holds.",
            "Other work on the box shows in the load average; the memory figures do not depend on it.",
        ),
        headline=(
            ("max RSS vs budget", f"{rows[1][1].split(' / ')[1]} vs {r.budget_mb:.0f} MB ({r.cameras} cameras)"),
            ("RSS growth / open fds end", f"{rows[4][1]} / {r.samples[-1].fds}"),
        ),
    )


def collect(quick: bool = False) -> Section:
    return section(soak(4, 60.0 if quick else 1800.0, 5.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--duration-s", type=float, default=1800.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="60 s: a smoke run, not numbers to quote")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the agent (experiments)")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="soak this site config (e.g. config/demo.yaml) instead of --cameras generated cameras",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where the PNGs go")
    args = parser.parse_args(argv)
    # The report's own renderer, so the PNGs look as they do in REPORT.md after `make bench`.
    from benchmarks.report import _render, print_section

    extra = dict(e.split("=", 1) for e in args.env)
    result = soak(args.cameras, 60.0 if args.quick else args.duration_s, args.sample_s, extra, args.config)
    sec = section(result)
    print_section(sec)
    args.out.mkdir(parents=True, exist_ok=True)
    for plot in sec.plots:
        _render(plot, args.out / plot.file_name)
        print(f"wrote {args.out / plot.file_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
