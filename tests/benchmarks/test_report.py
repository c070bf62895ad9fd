"""The report writer turns a synthetic result set into REPORT.md and PNGs (nothing is timed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.report import Environment, Plot, Section, Table, write_report
from benchmarks.run_all import README_END, README_START, update_readme

pytest.importorskip("matplotlib")

ENV = Environment(
    "Test CPU",
    2,
    "Linux x86_64",
    (("python", "3.11"), ("numpy", "2.0")),
    "2026-01-01 00:00 UTC",
    "python -m benchmarks.run_all --quick",
)


def _sections() -> list[Section]:
    stages = Plot(
        "stages.png",
        "stacked_bar",
        "stages",
        ("product", "hand-written"),
        (("decode", (2.0, 2.5)), ("inference", (5.0, 5.2))),
        "ms",
    )
    fps = Plot(
        "fps.png",
        "bar",
        "fps",
        ("yolox", "picodet"),
        (("320px", (100.0, float("nan"))), ("416px", (60.0, 50.0))),
        "fps",
    )
    latency = Plot("latency.png", "box", "latency", (), (("put -> receipt", (1.0, 1.5, 2.0, 9.0)),), "ms")
    cameras = Plot("cameras.png", "line", "cameras vs CPU", ("1", "2", "4"), (("CPU %", (20.0, 41.0, 80.0)),), "%")
    return [
        Section(
            "pipeline",
            "Pipeline",
            (Table("Stages", ("stage", "ms"), (("decode", 2.0), ("rules", None))),),
            (stages, fps),
            ("a note",),
            (("pipeline fps", "120"),),
        ),
        Section("delivery", "Delivery", plots=(latency, cameras), preformatted="raw output line"),
        Section("capacity", "Capacity: cameras vs CPU", error="benchmarks/bench_capacity.py is not in this tree yet"),
    ]


def test_report_has_every_section_table_and_plot(tmp_path: Path) -> None:
    path = write_report(_sections(), ENV, tmp_path)
    text = path.read_text()
    for heading in (
        "## Machine and command",
        "**Summary**",
        "## Pipeline",
        "## Delivery",
        "## Capacity: cameras vs CPU",
    ):
        assert heading in text
    assert "Test CPU, 2 logical cores" in text and "`python -m benchmarks.run_all --quick`" in text
    assert "| decode | 2.00 |" in text and "| rules | - |" in text
    assert "| Pipeline | pipeline fps | 120 |" in text
    assert "**Not run:** benchmarks/bench_capacity.py is not in this tree yet" in text
    assert "```\nraw output line\n```" in text
    for name in ("stages.png", "fps.png", "latency.png", "cameras.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in text


def test_readme_summary_is_replaced_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n## Benchmarks\n\n{README_START}\nold\n{README_END}\n\nafter\n")
    assert update_readme(readme, _sections(), "benchmarks/results/REPORT.md")
    text = readme.read_text()
    assert "old" not in text and "| Pipeline | pipeline fps | 120 |" in text and text.endswith("after\n")
    assert not update_readme(tmp_path / "missing.md", _sections(), "x")


def test_capacity_tables_become_cameras_vs_cpu_and_fps_plots() -> None:
    from benchmarks.run_all import capacity_plots

    printed = (
        "5 clips at 640x360 15 fps, detect 5 fps, 2 cores, load average 0.5, model yolox-nano-416\n"
        "motion       N  min fps  mean fps agent cpu  box cpu  detected  infer ms  RSS MiB  pass\n"
        "on_motion    1     5.05      5.05        8%       8%      100%      15.8      284   yes\n"
        "on_motion    8     4.40      4.44       67%      68%      100%      14.1      333    no\n"
        "\n\n"
        "5 clips at 640x360 15 fps, detect 5 fps, 2 cores, load average 0.5, model yolox-nano@320\n"
        "on_motion   12     5.00      5.02       54%      54%      100%       9.8      324   yes\n"
    )
    cpu, fps = capacity_plots(printed)
    assert cpu.labels == ("1", "8", "12") and fps.file_name == "capacity_fps.png"
    series = dict(cpu.series)
    assert series["yolox-nano-416, on_motion"][:2] == (8.0, 67.0)
    assert series["yolox-nano@320, on_motion"][2] == 54.0
    assert dict(fps.series)["yolox-nano-416, on_motion"][1] == 4.40
    assert capacity_plots("no table here") == ()
