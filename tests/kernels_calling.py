"""A kernel set of its own whose first kernel calls the second (for tests/test_kernels_aot.py).

Built into a temporary folder by the test; its sources are this file, so it
never touches the agent's compiled module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.kernels import KernelSet

SAMPLE = KernelSet(
    "sample_kernels",
    modules=("tests.kernels_calling",),
    root=Path(__file__).resolve().parents[1],
    home=Path(__file__).resolve().parent,
)


@SAMPLE.kernel("f8[:](f8[::1], f8)")
def _squares_plus(values: np.ndarray, offset: float) -> np.ndarray:
    out = np.empty(values.shape[0])
    for i in range(values.shape[0]):
        out[i] = _square(values[i]) + offset
    return out


@SAMPLE.kernel("f8(f8)")
def _square(value: float) -> float:
    return value * value


def squares_plus(values: np.ndarray, offset: float) -> np.ndarray:
    return _squares_plus(np.ascontiguousarray(values, np.float64), float(offset))
