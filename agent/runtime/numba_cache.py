"""Where Numba keeps compiled kernels, decided before any kernel is compiled.

Numba picks a kernel's cache location when the kernel is defined (at
import), from `NUMBA_CACHE_DIR`. So the CLI calls `configure_from_argv`
before it imports the command modules: `NUMBA_CACHE_DIR` from the
environment wins (systemd units set it); otherwise `runtime.numba_cache_dir`
of the `--config` file (or a `--set runtime.numba_cache_dir=...`) is
exported. With neither, Numba writes beside the package when it can, or in
the user's cache folder.

The same folder holds the kernels compiled ahead of time (`agent.kernels`,
built there by `edge-agent warmup`): a process that loads them never imports
Numba, and then this module leaves Numba's config alone. Numba's own cache
serves the JIT fallback.
"""

from __future__ import annotations

__all__ = ["apply_cache_dir", "configure_from_argv", "effective_cache_dir"]

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

_ENV = "NUMBA_CACHE_DIR"


def apply_cache_dir(path: Path) -> bool:
    """Export `path` as the cache unless the environment already names one; True when applied."""
    if os.environ.get(_ENV):
        return False
    path.mkdir(parents=True, exist_ok=True)
    os.environ[_ENV] = str(path)
    if "numba" in sys.modules:
        # Kernels defined from now on use it; ones already defined keep their location.
        from numba.core import config

        config.CACHE_DIR = str(path)  # type: ignore[attr-defined]  # set at import from the env, untyped
    return True


def effective_cache_dir() -> str:
    """The cache folder Numba uses, in words."""
    return os.environ.get(_ENV) or "numba default (beside the package or the user cache)"


def _option(argv: Sequence[str], name: str) -> list[str]:
    values = []
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(name + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _from_config(config_file: Path) -> Path | None:
    try:
        doc = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None  # the real config load reports it
    runtime = doc.get("runtime") if isinstance(doc, dict) else None
    value = runtime.get("numba_cache_dir") if isinstance(runtime, dict) else None
    return Path(value) if isinstance(value, str) and "${" not in value else None


def configure_from_argv(argv: Sequence[str]) -> Path | None:
    """Apply the cache folder a command line's config asks for (see the module docstring)."""
    if os.environ.get(_ENV):
        return None
    configs = _option(argv, "--config")
    if not configs:
        return None
    base = Path(configs[-1]).resolve().parent
    chosen: Path | None = None
    for override in _option(argv, "--set"):
        if override.startswith("runtime.numba_cache_dir="):
            chosen = Path(override.split("=", 1)[1])
    chosen = chosen or _from_config(Path(configs[-1]))
    if chosen is None:
        return None
    path = chosen if chosen.is_absolute() else (base / chosen).resolve()
    try:
        apply_cache_dir(path)
    except OSError:
        return None  # unwritable: Numba falls back to its default and still works
    return path
