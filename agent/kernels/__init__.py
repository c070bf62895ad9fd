"""The agent's Numba kernels, compiled ahead of time, with Numba's JIT as the fallback.

`registry` owns the `kernel` decorator that the stage modules put on their
kernels instead of `numba.njit`, and the one choice per process between the
extension module compiled ahead of time and the JIT. `build` compiles every
kernel into that module with `numba.pycc` (`python -m agent.kernels.build`,
run by `make venv` and `edge-agent warmup`). A process that uses the
compiled module never imports Numba or llvmlite.
"""

from agent.kernels.registry import KERNELS, KernelSet, KernelStatus, kernel, kernel_status

__all__ = ["KERNELS", "KernelSet", "KernelStatus", "kernel", "kernel_status"]
