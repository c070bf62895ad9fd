"""The Numba kernels compiled ahead of time (`agent.kernels`): loaded without Numba, the same code as the JIT.

The compiled module for the current sources comes from `make venv` (in
`agent/kernels/`) or, when absent or stale, is built once into a temporary
folder. Each check runs the agent in a child process, where the mode is
chosen at import: the compiled module (found through `NUMBA_CACHE_DIR`) or
the JIT (`EDGE_AGENT_KERNELS=jit`, with the repository's Numba cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.detection.box_ops import iou_matrix, nms, nms_class_aware
from agent.detection.decoding import decode_gfl, decode_yolov8, decode_yolox
from agent.detection.preprocess import hwc_to_nchw_normalised
from agent.kernels import KERNELS, KernelSet
from agent.kernels.registry import CACHE_DIR_ENV, ENV_MODE
from agent.rules.geometry import points_in_polygon, side_of_line
from agent.tracking.assignment import linear_assignment, match_by_iou

REPO = Path(__file__).resolve().parents[1]
JIT_CACHE = REPO / ".cache" / "numba"


def _python(code: str, cache_dir: Path, *, jit: bool = False, timeout: float = 300) -> str:
    """Run `code` in a child Python with the agent importable; its stdout (the test fails on a non-zero exit)."""
    child_env = {**os.environ, "PYTHONPATH": str(REPO), CACHE_DIR_ENV: str(cache_dir)}
    child_env.pop(ENV_MODE, None)
    if jit:
        child_env[ENV_MODE] = "jit"
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def compiled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the compiled module for the current sources."""
    for folder in KERNELS.search_dirs():
        if (folder / KERNELS.file_name()).is_file():
            return folder
    out = tmp_path_factory.mktemp("kernels")
    done = subprocess.run(
        [sys.executable, "-m", "agent.kernels.build", "--out", str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


# ---------------------------------------------------------------- the running agent


def test_a_replay_runs_compiled_kernels_without_loading_numba(
    compiled_dir: Path, vtest_avi: Path, tmp_path: Path
) -> None:
    out = tmp_path / "alerts.jsonl"
    sets = {
        "signing.key_file": tmp_path / "key.pem",
        "outbox.path": tmp_path / "outbox.sqlite",
        "policies.pseudonym_key_file": tmp_path / "pseudonym.key",
        "policies.audit_log": tmp_path / "audit.jsonl",
        "runtime.state_dir": tmp_path / "run",
    }
    argv = ["replay", "--config", str(REPO / "config" / "demo.yaml"), "--source", str(vtest_avi)]
    argv += ["--max-frames", "80", "--start-time", "2026-01-01T12:00:00+00:00", "--out", str(out)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    code = (
        "import json, sys\n"
        "from agent.cli.main import main\n"
        f"rc = main({argv!r})\n"
        "from agent.kernels import kernel_status\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite'))\n"
        "print(json.dumps({'rc': rc, 'mode': kernel_status().mode, 'loaded': loaded[:5]}))\n"
    )
    result = json.loads(_python(code, compiled_dir).splitlines()[-1])
    assert result == {"rc": 0, "mode": "aot", "loaded": []}
    assert out.read_text().count("\n") >= 1, "the replay published nothing: the kernels did not run"


def _gil_gap() -> dict[str, float]:
    """How long the main thread waits at most while another thread runs one long kernel call."""
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1000, (2_000_000, 2))
    angles = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    polygon = np.stack([500 + 400 * np.cos(angles), 500 + 400 * np.sin(angles)], axis=1)
    t0 = time.perf_counter()
    points_in_polygon(points, polygon)
    alone = time.perf_counter() - t0
    worker = threading.Thread(target=points_in_polygon, args=(points, polygon))
    gap, last = 0.0, time.perf_counter()
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    return {"alone_s": alone, "max_gap_s": gap}


def test_compiled_kernels_release_the_gil(compiled_dir: Path) -> None:
    # As the JIT's nogil=True does: while one camera's kernel runs, other threads keep going.
    code = (
        "import json\n"
        "from agent.kernels import kernel_status\n"
        "from tests.test_kernels_aot import _gil_gap\n"
        "print(json.dumps({'mode': kernel_status().mode, **_gil_gap()}))\n"
    )
    result = json.loads(_python(code, compiled_dir).splitlines()[-1])
    assert result["mode"] == "aot"
    assert result["alone_s"] > 0.05, result
    # Holding the GIL, the main thread would stall for the whole call.
    assert result["max_gap_s"] < result["alone_s"] / 2, result


# ---------------------------------------------------------------- the same code in both modes


def exercise() -> dict[str, np.ndarray]:
    """Every kernel through its public wrapper, on inputs of other dtypes and layouts than its signature's."""
    rng = np.random.default_rng(7)
    out: dict[str, np.ndarray] = {}
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    tensor = np.full((1, 3, 48, 64), 7, np.float32)
    hwc_to_nchw_normalised(frame[5:45, 10:70], tensor, "rgb", np.array([1.0, 2.0, 3.0]), np.array([50.0, 60, 70]))
    out["hwc"] = tensor
    mask = np.zeros(80, np.int64)
    mask[[0, 2, 7]] = 1
    strides, size = (8, 16, 32), (64, 64)
    cand = decode_yolox(rng.uniform(0, 1, (1, 84, 85)), strides, size, 0.2, mask)
    out |= {"yolox_box": cand.box_xyxy_input.copy(), "yolox_score": cand.score.copy(), "yolox_cls": cand.class_id}
    cls = [rng.uniform(0, 1, (1, n, 80)) for n in (64, 16, 4)]
    dis = [rng.normal(0, 2, (1, n, 32)) for n in (64, 16, 4)]
    cand = decode_gfl(cls, dis, strides, size, -0.5, 0.3, mask)
    out |= {"gfl_box": cand.box_xyxy_input.copy(), "gfl_score": cand.score.copy(), "gfl_cls": cand.class_id.copy()}
    v8 = np.concatenate([rng.uniform(0, 64, (1, 100, 4)), rng.uniform(0, 1, (1, 100, 80))], 2).transpose(0, 2, 1)
    cand = decode_yolov8(v8, 0.25, mask.astype(bool))
    out |= {"v8_box": cand.box_xyxy_input.copy(), "v8_score": cand.score.copy(), "v8_cls": cand.class_id.copy()}
    xy = rng.uniform(0, 200, (40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (40, 2))], 1)  # float64
    classes = rng.integers(0, 3, 40)  # int64
    out["iou_classes"] = iou_matrix(boxes[::2], boxes[1::2], classes[::2], classes[1::2])
    out["iou"] = iou_matrix(np.asfortranarray(boxes), boxes.tolist())
    score = rng.uniform(0, 1, 40)
    out["nms_class_aware"] = nms_class_aware(boxes, score, classes, 0.3)
    out["nms"] = nms(boxes[::2], score[::2], 0.2, max_keep=5)
    cost = np.asfortranarray(rng.uniform(0, 1, (7, 5)).astype(np.float32))
    out["assignment"] = linear_assignment(cost)
    matches, rows, cols = match_by_iou(out["iou"][:15, :10], 0.1)
    out |= {"matches": matches, "free_rows": rows, "free_cols": cols}
    points = rng.uniform(0, 100, (50, 2)).astype(np.float32)
    out["inside"] = points_in_polygon(points[::2], [(10, 10), (90, 20), (70, 95), (5, 60)])
    out["side"], out["along"] = side_of_line(points.astype(np.int64), [0, 0], (100, 80))
    return out


def _exercised(cache_dir: Path, out: Path, *, jit: bool) -> dict[str, np.ndarray]:
    code = (
        "import numpy as np\n"
        "from agent.kernels import kernel_status\n"
        "from tests.test_kernels_aot import exercise\n"
        f"np.savez({str(out)!r}, **exercise())\n"
        "print(kernel_status().mode)\n"
    )
    mode = _python(code, cache_dir, jit=jit).splitlines()[-1]
    assert mode == ("jit" if jit else "aot")
    with np.load(out) as saved:
        return {k: saved[k] for k in saved.files}


def test_compiled_and_jit_kernels_give_the_same_results(compiled_dir: Path, tmp_path: Path) -> None:
    compiled = _exercised(compiled_dir, tmp_path / "aot.npz", jit=False)
    jitted = _exercised(JIT_CACHE, tmp_path / "jit.npz", jit=True)
    assert compiled.keys() == jitted.keys()
    assert len(compiled["yolox_score"]) and len(compiled["gfl_score"]) and len(compiled["v8_score"])
    for key, value in compiled.items():
        if np.issubdtype(value.dtype, np.floating):
            # The JIT may fuse multiply-adds for this CPU; the compiled module is generic x86-64.
            np.testing.assert_allclose(value, jitted[key], rtol=1e-5, atol=1e-4, err_msg=key)
        else:
            np.testing.assert_array_equal(value, jitted[key], err_msg=key)


def test_the_wrappers_pass_only_the_declared_signatures() -> None:
    # A compiled function reinterprets whatever it is given, so the wrappers must convert: in the
    # JIT each kernel then has compiled exactly its declared signature, whatever the callers passed.
    code = (
        "import json\n"
        "from numba.core import sigutils\n"
        "from agent.kernels import KERNELS\n"
        "from tests.test_kernels_aot import exercise\n"
        "exercise()\n"
        "print(json.dumps({e.symbol: [str(list(sigutils.normalize_signature(e.signature)[0]))]\n"
        "    + [str(list(s)) for s in e.runs.signatures] for e in KERNELS.entries.values()}))\n"
    )
    result = json.loads(_python(code, JIT_CACHE, jit=True).splitlines()[-1])
    assert len(result) == 9
    for symbol, (declared, *compiled) in result.items():
        assert compiled == [declared], symbol


# ---------------------------------------------------------------- choosing and building


def test_a_kernel_that_calls_another_works_compiled_and_in_the_jit(tmp_path: Path) -> None:
    build = (
        "from pathlib import Path\n"
        "from agent.kernels.build import build\n"
        "from tests.kernels_calling import SAMPLE\n"
        f"print(build(SAMPLE, Path({str(tmp_path)!r}))[0])\n"
    )
    built = Path(_python(build, tmp_path, jit=True).splitlines()[-1])
    assert built.parent == tmp_path and built.is_file()
    call = (
        "import json, sys\n"
        "import numpy as np\n"
        "from tests.kernels_calling import SAMPLE, squares_plus\n"
        "values = squares_plus(np.arange(4), 0.5).tolist()\n"
        "print(json.dumps([SAMPLE.status().mode, values, 'numba' in sys.modules]))\n"
    )
    assert json.loads(_python(call, tmp_path).splitlines()[-1]) == ["aot", [0.5, 1.5, 4.5, 9.5], False]
    assert json.loads(_python(call, tmp_path, jit=True).splitlines()[-1]) == ["jit", [0.5, 1.5, 4.5, 9.5], True]


def _fresh_set(home: Path) -> KernelSet:
    return KernelSet(KERNELS.name, KERNELS.modules, KERNELS.root, home)


def test_the_kernels_run_in_the_jit_when_the_module_is_missing_broken_or_refused(
    compiled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv(ENV_MODE, raising=False)
    missing = _fresh_set(tmp_path).status()
    assert missing.mode == "jit" and KERNELS.file_name() in missing.detail and "warmup" in missing.detail
    (tmp_path / KERNELS.file_name()).write_bytes(b"not a shared object")
    broken = _fresh_set(tmp_path).status()
    assert broken.mode == "jit" and "does not load" in broken.detail
    assert _fresh_set(compiled_dir).status().mode == "aot"
    monkeypatch.setenv(ENV_MODE, "jit")
    assert _fresh_set(compiled_dir).status().mode == "jit"


def test_a_kernel_outside_its_sets_modules_is_refused() -> None:
    def _stray(x: float) -> float:
        return x

    with pytest.raises(RuntimeError, match="kernel set"):
        KERNELS.kernel("f8(f8)")(_stray)


def test_a_build_without_a_c_compiler_fails_and_says_the_jit_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent.kernels.build", "--out", str(tmp_path), "--force"],
        env={**os.environ, "PYTHONPATH": str(REPO), "CC": str(tmp_path / "no-such-cc")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1
    assert "no C compiler" in done.stderr and "Numba's JIT" in done.stderr
    assert not list(tmp_path.glob(f"{KERNELS.name}_*"))


def test_warmup_compiles_the_kernels_into_the_configured_cache_folder(tmp_path: Path) -> None:
    # As at install time: no NUMBA_CACHE_DIR in the environment, the folder from the config.
    env = {k: v for k, v in os.environ.items() if k not in (CACHE_DIR_ENV, ENV_MODE)}
    argv = ["warmup", "--config", str(REPO / "config" / "demo.yaml"), "--set", f"runtime.numba_cache_dir={tmp_path}"]
    done = subprocess.run(
        [sys.executable, "-m", "agent", *argv],
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kernels compiled ahead of time" in done.stdout
    assert (tmp_path / KERNELS.file_name()).is_file()
