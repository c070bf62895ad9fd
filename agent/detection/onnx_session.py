"""ONNX Runtime session for one detector model, checked against its manifest entry.

Owns the `InferenceSession` lifecycle (context manager), thread and
execution-provider settings, and the refusal of a file that is damaged or
whose input/output contract differs from the manifest.
"""

from __future__ import annotations

__all__ = ["OnnxSession", "check_output_contract", "read_io_shapes"]

import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import onnxruntime as ort

from agent.detection.manifest import ModelSpec
from agent.errors import ModelError
from agent.logs import log_event

_LOG = logging.getLogger("agent.detection.onnx_session")
Dim = int | str | None
IoShape = tuple[str, list[Dim]]
# ORT warns about unused initializers in some exports; those lines are noise to an operator.
_ORT_LOG_ERRORS_ONLY = 3


def _session_options(intra_op_threads: int, inter_op_threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = _ORT_LOG_ERRORS_ONLY
    # Idle intra-op threads would spin between inferences, taking CPU from the other cameras.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Both memory settings measured on the live agent (one camera, yolox-nano-416, 416x416) and
    # kept at ONNX Runtime's defaults on purpose. Without the arena every inference's activations
    # go through glibc malloc, which keeps what is freed: RSS about 60 MB higher. Without the
    # memory pattern RSS is 4 MB lower but the agent's mean inference time went from 15-16 ms to
    # 17-20 ms (an isolated session showed no difference): not worth it. What the agent's memory
    # is made of is in the README (Running a site) and benchmarks/bench_soak.py measures it.
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    return opts


def _open(path: Path, opts: ort.SessionOptions, providers: Sequence[str]) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))
    # ORT raises its own pybind exception types (InvalidProtobuf, Fail, ...) for bad files.
    except Exception as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"model file {path} is not a loadable ONNX model: {first_line}") from err


def read_io_shapes(path: Path) -> tuple[IoShape, list[IoShape]]:
    """Return the single input's (name, shape) and every output's (name, shape) as declared."""
    sess = _open(path, _session_options(1, 1), ["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"model file {path} has {len(inputs)} inputs, a detector needs exactly 1")
    return (inputs[0].name, list(inputs[0].shape)), [(o.name, list(o.shape)) for o in sess.get_outputs()]


def _dims_compatible(declared: Sequence[Dim], expected: Sequence[int | None]) -> bool:
    if len(declared) != len(expected):
        return False
    return all(not isinstance(d, int) or e is None or d == e for d, e in zip(declared, expected, strict=False))


def _fmt(shapes: Sequence[Sequence[Any]]) -> str:
    return "; ".join("[" + ", ".join("?" if d is None else str(d) for d in s) + "]" for s in shapes)


def _check_declared(spec: ModelSpec, path: Path, sess: ort.InferenceSession) -> None:
    inp = sess.get_inputs()
    if len(inp) != 1 or len(inp[0].shape) != 4:
        got = [(i.name, i.shape) for i in inp]
        raise ModelError(f"model {spec.name!r} ({path}): expected one [1, 3, H, W] input, got {got}")
    if inp[0].name != spec.input_name:
        raise ModelError(f"model {spec.name!r} ({path}): expected input {spec.input_name!r}, got {inp[0].name!r}")
    declared = [o.shape for o in sess.get_outputs()]
    ok = len(declared) == len(spec.output_shapes) and all(
        _dims_compatible(d, e) for d, e in zip(declared, spec.output_shapes, strict=False)
    )
    if not ok:
        raise ModelError(
            f"model {spec.name!r} ({path}) outputs do not match the manifest: "
            f"expected {_fmt(spec.output_shapes)}, got {_fmt(declared)}"
        )


class OnnxSession:
    """One model loaded in ONNX Runtime, checked against its manifest entry.

    The constructor runs one inference on a blank input: it refuses a model
    whose actual output shapes differ from the manifest and doubles as the
    warm-up. Use as a context manager or call `close()`.
    """

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        *,
        input_size_hw: tuple[int, int] | None = None,
        intra_op_threads: int = 2,
        inter_op_threads: int = 1,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        available = set(ort.get_available_providers())
        usable = [p for p in providers if p in available]
        if not usable:
            raise ModelError(f"none of the execution providers {list(providers)} is available ({sorted(available)})")
        self.spec = spec
        self.input_size_hw = input_size_hw or spec.input_size_hw
        if not spec.dynamic_input and self.input_size_hw != spec.input_size_hw:
            raise ModelError(
                f"model {spec.name!r} has a fixed input of {spec.input_size_hw[0]}x{spec.input_size_hw[1]}, "
                f"cannot run at {self.input_size_hw[0]}x{self.input_size_hw[1]}"
            )
        self.providers = tuple(usable)
        self._sess: ort.InferenceSession | None = _open(
            path, _session_options(intra_op_threads, inter_op_threads), usable
        )
        _check_declared(spec, path, self._sess)
        self._input_name = self._sess.get_inputs()[0].name
        self._check_runtime(path)
        log_event(
            _LOG,
            "model_loaded",
            model=spec.name,
            path=path,
            providers=",".join(usable),
            input_hw=f"{self.input_size_hw[0]}x{self.input_size_hw[1]}",
            intra_threads=intra_op_threads,
        )

    def _check_runtime(self, path: Path) -> None:
        h, w = self.input_size_hw
        try:
            outputs = self.run(np.zeros((1, 3, h, w), np.float32))
        except ModelError:
            raise
        except Exception as err:
            raise ModelError(f"model {self.spec.name!r} ({path}) cannot run at input {h}x{w}: {err}") from err
        actual = tuple(tuple(o.shape) for o in outputs)
        expected = self.spec.expected_output_shapes(self.input_size_hw)
        if actual != expected:
            raise ModelError(
                f"model {self.spec.name!r} ({path}) at input {h}x{w}: expected outputs "
                f"{_fmt(expected)}, got {_fmt(actual)}"
            )

    def run(self, tensor_nchw: np.ndarray) -> list[np.ndarray]:
        """Run one inference on a (1, 3, H, W) float32 tensor; outputs in manifest order."""
        if self._sess is None:
            raise ModelError(f"model {self.spec.name!r} session is closed")
        return self._sess.run(None, {self._input_name: tensor_nchw})  # type: ignore[no-any-return]

    def close(self) -> None:
        self._sess = None

    def __enter__(self) -> OnnxSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_output_contract(spec: ModelSpec, path: Path, input_size_hw: tuple[int, int] | None = None) -> None:
    """Load the model once and check input and output shapes against `spec`.

    Raises:
        ModelError: the file is not loadable or its contract differs.
    """
    with OnnxSession(spec, path, input_size_hw=input_size_hw, intra_op_threads=1):
        pass
