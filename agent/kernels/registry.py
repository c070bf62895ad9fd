"""`kernel`: a Numba kernel with one explicit signature, compiled ahead of time or else by the JIT.

A stage module writes

    @kernel("i8(f4[:, ::1], f8)")
    def _count_above(values, threshold): ...

and gets, at import, the function of that name in the extension module that
`agent.kernels.build` compiles from every kernel with `numba.pycc`; when that
module is absent, was compiled from other sources or does not load, it gets
`numba.njit(cache=True, nogil=True)` of the same function, and only then is
Numba imported. The choice is made once per process for every kernel of the
set together (a compiled kernel cannot call a JIT one, nor the reverse), and
`kernel_status()` says which it was and why.

The compiled module's name carries a fingerprint of the kernel modules'
sources (whole files: Numba freezes the module globals a kernel reads) and of
this package, so a module built from other sources is never loaded: after an
edit the kernels run in the JIT until the module is built again. It is looked
for in `NUMBA_CACHE_DIR`, where a service keeps its compiled code (the CLI
exports `runtime.numba_cache_dir` there), then beside this file, where
`make venv` builds it.

An exported function, like any `numba.pycc` export, checks nothing of its
arguments but their item size: each kernel's typed wrapper passes exactly the
declared dtypes, dimensions and C-contiguity (`np.ascontiguousarray(x,
dtype)`), which is also all the JIT ever compiles. `EDGE_AGENT_KERNELS=jit`
forces the JIT, for comparisons and debugging.
"""

from __future__ import annotations

__all__ = [
    "CACHE_DIR_ENV",
    "ENV_MODE",
    "KERNELS",
    "KernelEntry",
    "KernelSet",
    "KernelStatus",
    "kernel",
    "kernel_status",
]

import hashlib
import importlib.machinery
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

ENV_MODE = "EDGE_AGENT_KERNELS"
CACHE_DIR_ENV = "NUMBA_CACHE_DIR"
_HERE = Path(__file__).resolve().parent
# This package's own files count in the fingerprint: how kernels are named, exported and
# compiled (the GIL release, the target CPU) lives here, so a change here rebuilds them too.
_OWN_SOURCES = (_HERE / "registry.py", _HERE / "build.py")


@dataclass(frozen=True, slots=True)
class KernelStatus:
    """Which code the kernels of a process run and why.

    Attributes:
        mode: "aot" (the compiled extension module) or "jit" (Numba's JIT).
        detail: the compiled module's path, or why the JIT runs (and how to fix it).
    """

    mode: Literal["aot", "jit"]
    detail: str


@dataclass(frozen=True, slots=True)
class KernelEntry:
    """One kernel: the name it is exported under, its signature, its Python function and what runs."""

    symbol: str
    signature: str
    function: Callable[..., Any]
    runs: Callable[..., Any]  # the compiled module's function, or the JIT dispatcher


def _jit(fn: F) -> F:
    from numba import njit  # only here: a process on the compiled module never loads Numba

    return cast(F, njit(cache=True, nogil=True)(fn))


class KernelSet:
    """The kernels of some modules and the one extension module compiled from all of them.

    Args:
        name: prefix of the compiled module's name (a Python identifier).
        modules: every module that defines kernels of this set; the fingerprint reads them.
        root: the folder holding the modules' top package (module `a.b` is `root/a/b.py`).
        home: where the compiled module goes when no `NUMBA_CACHE_DIR` is set.
    """

    def __init__(self, name: str, modules: tuple[str, ...], root: Path, home: Path) -> None:
        self.name = name
        self.modules = modules
        self.root = root
        self.home = home
        self.entries: dict[str, KernelEntry] = {}
        self._lock = threading.Lock()
        self._chosen = False
        self._compiled: ModuleType | None = None
        self._detail = ""
        self._missing: list[str] = []

    # ------------------------------------------------------------ the compiled module's name and place

    def source_files(self) -> list[Path]:
        return [self.root.joinpath(*m.split(".")).with_suffix(".py") for m in self.modules]

    def fingerprint(self) -> str:
        """16 hex digits over this package and every kernel module's source (raises OSError when unreadable)."""
        digest = hashlib.sha256(self.name.encode())
        for path in (*_OWN_SOURCES, *self.source_files()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()[:16]

    def module_name(self) -> str:
        return f"{self.name}_{self.fingerprint()}"

    def file_name(self) -> str:
        # The interpreter's own extension suffix (e.g. .cpython-311-x86_64-linux-gnu.so):
        # a module built for another Python is never picked up.
        return self.module_name() + importlib.machinery.EXTENSION_SUFFIXES[0]

    def search_dirs(self) -> list[Path]:
        cache = os.environ.get(CACHE_DIR_ENV)
        return [*([Path(cache)] if cache else []), self.home]

    def default_dir(self) -> Path:
        """Where a build writes: the first folder searched."""
        return self.search_dirs()[0]

    def symbol(self, fn: Callable[..., Any]) -> str:
        return f"{fn.__module__.replace('.', '_')}__{fn.__name__}"

    def load(self, path: Path) -> ModuleType:
        """Import the compiled module at `path` (ImportError or OSError when it does not load)."""
        spec = importlib.util.spec_from_file_location(path.name.split(".")[0], path)
        if spec is None or spec.loader is None:
            raise ImportError(f"not an extension module: {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    # ------------------------------------------------------------ the choice, once per process

    def _choose(self) -> None:
        if os.environ.get(ENV_MODE, "").lower() == "jit":
            self._detail = f"{ENV_MODE}=jit"
            return
        try:
            file_name = self.file_name()
        except OSError as err:
            self._detail = f"kernel sources unreadable ({err})"
            return
        failures = []
        for folder in self.search_dirs():
            path = folder / file_name
            if not path.is_file():
                continue
            try:
                self._compiled = self.load(path)
            except (ImportError, OSError) as err:
                failures.append(f"{path} does not load ({err})")
                continue
            self._detail = str(path)
            return
        where = " or ".join(str(d) for d in self.search_dirs())
        found = "; ".join(failures) or f"no {file_name} in {where}"
        self._detail = f"{found}: compile them with `edge-agent warmup` or `python -m agent.kernels.build`"

    def _compiled_module(self) -> ModuleType | None:
        with self._lock:
            if not self._chosen:
                self._choose()
                self._chosen = True
            return self._compiled

    def use_jit(self, reason: str) -> None:
        """Run every kernel of this set in the JIT from here on (the build compiles their Python functions).

        Raises:
            RuntimeError: kernels of this set already use the compiled module in this process.
        """
        with self._lock:
            if self._compiled is not None and self.entries:
                raise RuntimeError("these kernels already run compiled code: build them in a fresh process")
            self._chosen, self._compiled, self._detail = True, None, reason

    def status(self) -> KernelStatus:
        compiled = self._compiled_module()
        if compiled is None:
            return KernelStatus("jit", self._detail)
        if self._missing:
            return KernelStatus("aot", f"{self._detail}, except {', '.join(self._missing)} (JIT: the file is damaged)")
        return KernelStatus("aot", self._detail)

    # ------------------------------------------------------------ the decorator

    def kernel(self, signature: str) -> Callable[[F], F]:
        """Declare a kernel with its one signature (Numba's string form, e.g. "f8[:](f8[:, ::1], i8)")."""

        def decorate(fn: F) -> F:
            if fn.__module__ not in self.modules or fn.__qualname__ != fn.__name__:
                raise RuntimeError(
                    f"{fn.__module__}.{fn.__qualname__}: a kernel is a module-level function of a module "
                    f"listed in its kernel set (the compiled module is built from those): {self.modules}"
                )
            symbol = self.symbol(fn)
            compiled = self._compiled_module()
            exported = getattr(compiled, symbol, None) if compiled is not None else None
            if compiled is not None and exported is None:
                # A module built from these very sources exports every kernel: only a damaged
                # file gets here, and this kernel still works through the JIT.
                self._missing.append(symbol)
            runs = exported if exported is not None else _jit(fn)
            self.entries[symbol] = KernelEntry(symbol, signature, fn, runs)
            return cast(F, runs)

        return decorate


KERNELS = KernelSet(
    "edge_agent_kernels",
    modules=(
        "agent.detection.decoding",
        "agent.detection.preprocess",
        "agent.detection.box_ops",
        "agent.tracking.assignment",
        "agent.rules.geometry",
    ),
    root=_HERE.parents[1],
    home=_HERE,
)
kernel = KERNELS.kernel
kernel_status = KERNELS.status
