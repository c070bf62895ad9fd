"""`make bench`: run every benchmark, write benchmarks/results/REPORT.md and its PNG plots.

Each benchmark module exposes `collect(quick) -> Section`; a benchmark that
fails or cannot run becomes a section that says why, and the rest still run.
The capacity benchmark (benchmarks/bench_capacity.py) is included when the
file exists: through its `collect(quick)` when it has one, else by running it
and keeping its printed output.

    python -m benchmarks.run_all [--quick] [--only pipeline,kernels] [--out benchmarks/results]
"""

from __future__ import annotations

__all__ = ["BENCHMARKS", "main", "run_capacity", "update_readme"]

import argparse
import dataclasses
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import (
    Plot,
    Section,
    command_line,
    environment,
    format_table,
    print_section,
    summary_table,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
ASSETS = (REPO / ".." / "shared" / "assets").resolve()
README_START, README_END = "<!-- bench-summary:start -->", "<!-- bench-summary:end -->"

# (key, module, title) in report order.
BENCHMARKS: tuple[tuple[str, str, str], ...] = (
    ("pipeline", "benchmarks.bench_pipeline", "Pipeline: product vs hand-written OpenCV + NumPy"),
    ("detection", "benchmarks.bench_detection", "Detectors: speed and person AP50 per model and input size"),
    ("overlap", "benchmarks.pipeline_overlap", "Single camera: pipeline vs inference-only fps"),
    ("regions", "benchmarks.bench_regions", "Detection on motion crops: whole frame vs regions"),
    ("int8", "benchmarks.bench_int8", "INT8 models: float vs static-quantized speed and person AP50"),
    ("kernels", "benchmarks.bench_kernels", "Numba kernels"),
    ("tracking", "benchmarks.bench_tracking", "Tracking: agent ByteTracker vs supervision ByteTrack"),
    ("rules", "benchmarks.bench_rules", "Rules: cost and alert accuracy"),
    ("redaction", "benchmarks.bench_redaction", "Face redaction: agent vs deface"),
    ("delivery", "benchmarks.bench_delivery", "Delivery: outbox and MQTT publisher"),
    ("verify", "benchmarks.bench_verify", "Receiving side: verification throughput"),
    ("feedback", "benchmarks.bench_feedback", "Feedback: frame -> received status, live agent"),
    ("ingest", "benchmarks.bench_ingest", "Receiving side: ingest throughput, publish to row, console pages"),
    ("fleet", "benchmarks.bench_fleet", "Fleet: 1,000 sites into ingest replicas, SQLite and PostgreSQL"),
    ("soak", "benchmarks.bench_soak", "Soak: memory and descriptors of the live agent"),
)
CAPACITY = ("capacity", "benchmarks.bench_capacity", "Capacity: cameras vs CPU")


def _timed(key: str, title: str, command: str, fn: Callable[[], Section]) -> Section:
    t0 = time.perf_counter()
    try:
        section = fn()
    except Exception as err:  # noqa: BLE001 - one broken benchmark must not sink the report
        traceback.print_exc()
        section = Section(key, title, error=f"{type(err).__name__}: {err}")
    return dataclasses.replace(section, command=command, elapsed_s=time.perf_counter() - t0)


def run_capacity(quick: bool) -> Section:
    """The capacity benchmark's section, or a placeholder when the file is not there yet."""
    key, module, title = CAPACITY
    if importlib.util.find_spec(module) is None:
        return Section(
            key,
            title,
            error="benchmarks/bench_capacity.py is not in this tree yet; "
            "`make bench` fills this section (cameras vs CPU table and plot) once it exists.",
        )
    mod = importlib.import_module(module)
    if hasattr(mod, "collect"):
        return mod.collect(quick)  # type: ignore[no-any-return]
    # The default model, then the smaller input an integrator would pick for more cameras.
    variants = ([], ["--model", "yolox-nano", "--input-size", "320", "--counts", "8,12,16,20"])
    outputs = []
    for extra in variants:
        done = subprocess.run(
            [sys.executable, "-m", module, *(["--quick"] if quick else []), *extra],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=900,
        )
        if done.returncode != 0:
            return Section(key, title, error=f"exited {done.returncode}: {done.stderr.strip()[-400:]}")
        outputs.append(done.stdout)
    text = "\n".join(outputs)
    return Section(
        key,
        title,
        preformatted=text,
        plots=capacity_plots(text),
        notes=("Printed output of the capacity benchmark, for yolox-nano-416 and yolox-nano at 320.",),
    )


_CAPACITY_MODEL = re.compile(r"model (\S+)")
_CAPACITY_ROW = re.compile(r"^(on_motion|always)\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+(\d+)%", re.M)


def capacity_plots(text: str) -> tuple[Plot, ...]:
    """Cameras vs agent CPU and vs the slowest camera's fps, one line per model and motion mode,
    parsed from the capacity benchmark's printed tables."""
    rows: dict[str, dict[int, tuple[float, float]]] = {}
    for block in text.split("\n\n\n"):
        model = _CAPACITY_MODEL.search(block)
        for mode, n, min_fps, cpu in _CAPACITY_ROW.findall(block):
            name = f"{model.group(1) if model else 'model'}, {mode}"
            rows.setdefault(name, {})[int(n)] = (float(cpu), float(min_fps))
    counts = sorted({n for series in rows.values() for n in series})
    if not counts:
        return ()
    labels = tuple(str(n) for n in counts)

    def series(column: int) -> tuple[tuple[str, tuple[float, ...]], ...]:
        return tuple(
            (name, tuple(by_n[n][column] if n in by_n else float("nan") for n in counts)) for name, by_n in rows.items()
        )

    return (
        Plot(
            "capacity_cpu.png",
            "line",
            "Cameras vs agent CPU (detect 5 fps)",
            labels,
            series(0),
            "agent CPU, % of the box",
            "cameras",
        ),
        Plot(
            "capacity_fps.png",
            "line",
            "Cameras vs slowest camera's detect fps (target 5)",
            labels,
            series(1),
            "detect fps of the slowest camera",
            "cameras",
        ),
    )


def update_readme(readme: Path, sections: list[Section], report_rel: str) -> bool:
    """Replace the summary between the README's markers; False when the markers are absent."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = f"{README_START}\n{format_table(summary_table(sections))}\n\nFull report: [{report_rel}]({report_rel})\n{README_END}"
    readme.write_text(head + block + tail)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subsets: a smoke run, not numbers to quote")
    parser.add_argument(
        "--only", default="", help="comma-separated keys: " + ",".join(k for k, _, _ in BENCHMARKS) + ",capacity"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md's summary alone")
    args = parser.parse_args(argv)
    os.environ.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    only = {k for k in args.only.split(",") if k}
    suffix = " --quick" if args.quick else ""
    sections = []
    for key, module, title in BENCHMARKS:
        if only and key not in only:
            continue
        print(f"== {key} ...", flush=True)
        sections.append(
            _timed(
                key,
                title,
                f"python -m {module}{suffix}",
                lambda m=module: importlib.import_module(m).collect(args.quick),
            )
        )
        print_section(sections[-1])
    if not only or "capacity" in only:
        sections.append(
            _timed(CAPACITY[0], CAPACITY[2], f"python -m {CAPACITY[1]}{suffix}", lambda: run_capacity(args.quick))
        )
    env = environment(
        command_line(),
        extra=(
            f"Load: load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; where other "
            "work shares the cores absolute times are noisy, and ratios within one run are the numbers to compare.",
            "Mode: quick subsets (smoke run)" if args.quick else "Mode: full run (subsets noted per section)",
        ),
    )
    path = write_report(
        sections,
        env,
        args.out,
        preamble=(
            "Generated by `make bench` (`python -m benchmarks.run_all`). Timings are medians with p10-p90 "
            "unless said otherwise; nothing in the test suite asserts a time.",
        ),
    )
    print(f"\nwrote {path}")
    if not args.no_readme and not only and update_readme(REPO / "README.md", sections, "benchmarks/results/REPORT.md"):
        print("updated README.md benchmark summary")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
