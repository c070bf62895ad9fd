"""Compiles every kernel of a `KernelSet` into one extension module with `numba.pycc`.

    python -m agent.kernels.build [--out DIR] [--force]

Imports the kernel modules with their set in JIT mode (a kernel that calls
another needs that one as a Numba dispatcher to be typed), exports each
kernel under its one signature, compiles the module and checks that it loads
and exports every kernel. It goes into DIR, by default `NUMBA_CACHE_DIR` when
set, else `agent/kernels/` (the folders the agent looks in), under a
temporary name first and then renamed, so a starting agent never loads half
a file; modules compiled from other sources are removed from DIR.

Needs Numba, setuptools and a C compiler (`numba.pycc` links with one). When
any is missing, or the build fails, it says why and exits 1; the agent then
runs the same kernels through Numba's JIT.
"""

from __future__ import annotations

__all__ = ["build", "main"]

import argparse
import importlib
import os
import shutil
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.kernels.registry import KERNELS, KernelSet

# pycc's default: the baseline instruction set of this architecture (x86-64: SSE2), as the
# Numba docs describe. Measured against the JIT, which targets this very CPU, the kernels
# run at the same speed (benchmarks/bench_kernels.py), and baseline code cannot fault on a
# virtual machine whose CPU model names more than its hypervisor passes through.
_TARGET_CPU = ""


@contextmanager
def _exports_release_the_gil(pycc_compiler: Any) -> Iterator[None]:
    """Compile the exports' Python wrappers with `release_gil`, as the JIT's `nogil=True` does.

    pycc builds its compile flags itself and offers no nogil option; its exported wrapper
    is Numba's ordinary CPython wrapper, which honours the flag. With it two cameras' kernels
    run at once on two cores, as they do in the JIT.
    """
    original = pycc_compiler.Flags

    class _NoGilFlags(original):  # type: ignore[misc, valid-type]  # numba ships no types
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    pycc_compiler.Flags = _NoGilFlags
    try:
        yield
    finally:
        pycc_compiler.Flags = original


def _import_pycc() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        # pycc warns of its pending deprecation on import; it is still Numba's AOT compiler.
        warnings.simplefilter("ignore")
        from numba.pycc import compiler as pycc_compiler
        from numba.pycc.cc import CC
    return CC, pycc_compiler


def _check(kernels: KernelSet, path: Path) -> None:
    """Raise ImportError unless `path` loads and exports every kernel of the set."""
    module = kernels.load(path)
    missing = sorted(s for s in kernels.entries if not callable(getattr(module, s, None)))
    if missing:
        raise ImportError(f"{path} lacks {', '.join(missing)}")


def _remove_other_builds(kernels: KernelSet, out_dir: Path, keep: Path) -> None:
    for old in out_dir.glob(f"{kernels.name}_*"):
        if old != keep and old.is_file():
            old.unlink(missing_ok=True)


def build(kernels: KernelSet, out_dir: Path, *, force: bool = False) -> tuple[Path, bool]:
    """Compile `kernels` into `out_dir`; return the module's path and whether it was compiled now.

    A module already there for the same sources that loads is kept unless `force`.
    """
    kernels.use_jit("compiling the kernels ahead of time")
    for name in kernels.modules:
        importlib.import_module(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / kernels.file_name()
    if target.is_file() and not force:
        try:
            _check(kernels, target)
            return target, False
        except (ImportError, OSError):
            pass  # damaged or partial: compile it again
    cc_class, pycc_compiler = _import_pycc()
    with tempfile.TemporaryDirectory(prefix=".kernels-build-", dir=out_dir) as tmp:
        cc = cc_class(kernels.module_name())
        cc.output_dir = tmp
        cc.output_file = target.name
        cc.target_cpu = _TARGET_CPU
        for entry in sorted(kernels.entries.values(), key=lambda e: e.symbol):
            cc.export(entry.symbol, entry.signature)(entry.function)
        with _exports_release_the_gil(pycc_compiler):
            cc.compile()
        built = Path(tmp) / target.name
        _check(kernels, built)
        os.replace(built, target)
    _remove_other_builds(kernels, out_dir, target)
    return target, True


def _reason(err: Exception) -> str:
    """One line on why the build failed, naming the usual causes."""
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler: {compiler} not found"
    if isinstance(err, PermissionError):
        return f"{err}: set NUMBA_CACHE_DIR or runtime.numba_cache_dir to a folder the agent's user can write"
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the module (default: NUMBA_CACHE_DIR, else agent/kernels/)"
    )
    parser.add_argument("--force", action="store_true", help="compile even when a module for these sources exists")
    args = parser.parse_args(argv)
    out_dir: Path = args.out or KERNELS.default_dir()
    t0 = time.perf_counter()
    try:
        path, compiled = build(KERNELS, out_dir, force=args.force)
    except Exception as err:  # noqa: BLE001 - any failure leaves the JIT, which runs the same kernels
        print(
            f"kernels: not compiled ahead of time ({_reason(err)}); the agent runs them in Numba's JIT", file=sys.stderr
        )
        return 1
    done = f"compiled {len(KERNELS.entries)} kernels in {time.perf_counter() - t0:.1f} s" if compiled else "up to date"
    print(f"kernels: {done}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
