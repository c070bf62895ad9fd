"""Benchmark results as values, and the writer that turns them into REPORT.md and PNG plots.

Every benchmark module returns a `Section`: tables (rows of already-chosen
numbers), plots (the data to draw, not the drawing) and notes. This module
owns the layout: Markdown tables for the terminal and the report, and
matplotlib (Agg backend, no display needed) for the PNGs. Nothing here times
anything.
"""

from __future__ import annotations

__all__ = [
    "Environment",
    "Plot",
    "Section",
    "Table",
    "command_line",
    "environment",
    "format_table",
    "print_section",
    "spread",
    "summary_table",
    "write_report",
]

import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table; floats are printed with `float_digits` decimals, None as a dash."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""
    float_digits: int = 2


@dataclass(frozen=True, slots=True)
class Plot:
    """Data for one PNG.

    kind:
        stacked_bar: one bar per label, one stacked segment per series (values per label).
        bar: grouped bars, one group per label, one bar per series (NaN leaves a gap).
        box: one box per series (values are samples); labels unused.
        line: x = labels parsed as numbers, one line per series.
    """

    file_name: str
    kind: Literal["stacked_bar", "bar", "box", "line"]
    title: str
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]
    y_label: str
    x_label: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """What one benchmark produced. `error` set means it could not run, and says why."""

    key: str
    title: str
    tables: tuple[Table, ...] = ()
    plots: tuple[Plot, ...] = ()
    notes: tuple[str, ...] = ()
    headline: tuple[tuple[str, str], ...] = ()
    command: str = ""
    elapsed_s: float = 0.0
    error: str | None = None
    preformatted: str = ""


@dataclass(frozen=True, slots=True)
class Environment:
    """The machine and versions a run used, and the exact command."""

    cpu_model: str
    logical_cores: int
    platform: str
    versions: tuple[tuple[str, str], ...]
    date_utc: str
    command: str
    extra: tuple[str, ...] = field(default_factory=tuple)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except ImportError:
        return "not installed"
    return str(getattr(mod, "__version__", "?"))


def environment(command: str, extra: Sequence[str] = ()) -> Environment:
    """Describe this machine and the library versions in use."""
    versions = [("python", platform.python_version())]
    versions += [
        (name, _version(mod))
        for name, mod in (
            ("numpy", "numpy"),
            ("opencv", "cv2"),
            ("onnxruntime", "onnxruntime"),
            ("numba", "numba"),
            ("supervision", "supervision"),
            ("matplotlib", "matplotlib"),
        )
    ]
    return Environment(
        cpu_model=_cpu_model(),
        logical_cores=os.cpu_count() or 0,
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        versions=tuple(versions),
        date_utc=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=command,
        extra=tuple(extra),
    )


def spread(samples: Sequence[float]) -> tuple[float, float, float]:
    """Median, p10 and p90 of timing samples."""
    if len(samples) == 0:
        return (math.nan, math.nan, math.nan)
    q = np.percentile(np.asarray(samples, np.float64), [50, 10, 90])
    return float(q[0]), float(q[1]), float(q[2])


def _cell(value: Cell, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def format_table(table: Table) -> str:
    """The table as GitHub Markdown (also readable in a terminal)."""
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(v, table.float_digits) for v in row) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def print_section(section: Section) -> None:
    print(f"\n## {section.title}")
    if section.error:
        print(f"NOT RUN: {section.error}")
    for table in section.tables:
        print()
        print(format_table(table))
    for note in section.notes:
        print(f"\n- {note}")


def _render(plot: Plot, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    x = np.arange(len(plot.labels))
    if plot.kind == "stacked_bar":
        bottom = np.zeros(len(plot.labels))
        for name, values in plot.series:
            v = np.nan_to_num(np.asarray(values, np.float64))
            ax.bar(x, v, bottom=bottom, label=name)
            bottom += v
        ax.set_xticks(x, plot.labels, rotation=15, ha="right")
    elif plot.kind == "bar":
        width = 0.8 / max(1, len(plot.series))
        for i, (name, values) in enumerate(plot.series):
            ax.bar(x + (i - (len(plot.series) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(x, plot.labels, rotation=15, ha="right")
    elif plot.kind == "box":
        ax.boxplot([list(v) for _, v in plot.series], whis=(1, 99), showfliers=False)
        ax.set_xticks(np.arange(1, len(plot.series) + 1), [n for n, _ in plot.series])
    else:
        xs = [float(v) for v in plot.labels]
        for name, values in plot.series:
            ax.plot(xs, values, marker="o", label=name)
    ax.set_title(plot.title)
    ax.set_ylabel(plot.y_label)
    if plot.x_label:
        ax.set_xlabel(plot.x_label)
    if plot.kind != "box" and len(plot.series) > 0:
        ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _environment_lines(env: Environment) -> list[str]:
    lines = [
        "## Machine and command",
        "",
        f"- CPU: {env.cpu_model}, {env.logical_cores} logical cores ({env.platform})",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in env.versions),
        f"- Date: {env.date_utc}",
        f"- Command: `{env.command}`",
    ]
    lines += [f"- {line}" for line in env.extra]
    return lines


def _section_lines(section: Section, plot_files: dict[str, str]) -> list[str]:
    lines = [f"## {section.title}", ""]
    if section.command:
        lines += [f"Command: `{section.command}` ({section.elapsed_s:.0f} s)", ""]
    if section.error:
        lines += [f"**Not run:** {section.error}", ""]
    for table in section.tables:
        lines += [format_table(table), ""]
    for plot in section.plots:
        if plot.file_name in plot_files:
            lines += [f"![{plot.title}]({plot_files[plot.file_name]})", ""]
    lines += [f"- {note}" for note in section.notes]
    if section.preformatted:
        lines += ["", "```", section.preformatted.rstrip(), "```"]
    return [*lines, ""]


def summary_table(sections: Sequence[Section]) -> Table:
    """One row per headline number across sections (also used for the README)."""
    rows = tuple((s.title, name, value) for s in sections for name, value in s.headline)
    return Table("Summary", ("benchmark", "measure", "value"), rows)


def write_report(
    sections: Sequence[Section],
    env: Environment,
    out_dir: Path,
    *,
    title: str = "Benchmark report",
    preamble: Sequence[str] = (),
) -> Path:
    """Write REPORT.md and every section's PNGs into `out_dir`; returns the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_files: dict[str, str] = {}
    for section in sections:
        for plot in section.plots:
            _render(plot, out_dir / plot.file_name)
            plot_files[plot.file_name] = plot.file_name
    lines = [f"# {title}", "", *preamble, ""] if preamble else [f"# {title}", ""]
    lines += [*_environment_lines(env), ""]
    lines += [format_table(summary_table(sections)), ""]
    for section in sections:
        lines += _section_lines(section, plot_files)
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def command_line() -> str:
    """The command that started this process, as a user would type it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(".py"):
        return "python " + " ".join(argv)
    return "python -m " + " ".join([_main_module_name(), *argv[1:]]) if argv else ""


def _main_module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else "?"
