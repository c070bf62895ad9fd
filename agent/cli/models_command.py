"""`edge-agent models`: list, verify, download and quantize detector models."""

from __future__ import annotations

__all__ = ["register"]

import argparse
from pathlib import Path

from agent.detection.manifest import ModelSpec
from agent.detection.model_store import known_specs, pull, resolve_model
from agent.errors import ModelError


def _input_text(spec: ModelSpec) -> str:
    h, w = spec.input_size_hw
    if spec.dynamic_input:
        return f"{h}x{w} dyn({'/'.join(str(s) for s in spec.supported_sizes)})"
    return f"{h}x{w}"


def _found_at(name: str) -> str:
    try:
        return str(resolve_model(name)[1])
    except ModelError as err:
        return "damaged (sha256 mismatch)" if "sha256" in str(err) else "missing"


def _cmd_list(args: argparse.Namespace) -> int:
    rows = [("NAME", "FILE", "INPUT", "LAYOUT", "LICENCE", "FOUND AT")]
    for name, spec in known_specs().items():
        rows.append((name, spec.file_name, _input_text(spec), spec.layout, spec.licence, _found_at(name)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _verify_one(name: str) -> str | None:
    """Return None when the model checks out, else the reason it does not."""
    from agent.detection.onnx_session import check_output_contract

    try:
        spec, path = resolve_model(name)
        sizes = spec.supported_sizes if spec.dynamic_input else (spec.input_size_hw[0],)
        for side in sizes:
            check_output_contract(spec, path, (side, side) if spec.dynamic_input else None)
    except ModelError as err:
        return str(err)
    return None


def _cmd_verify(args: argparse.Namespace) -> int:
    names = args.names or list(known_specs())
    failures = 0
    for name in names:
        problem = _verify_one(name)
        if problem is None:
            print(f"ok      {name}")
        else:
            failures += 1
            print(f"FAILED  {name}: {problem}")
    print(f"{len(names) - failures} of {len(names)} models verified")
    return 1 if failures else 0


def _cmd_pull(args: argparse.Namespace) -> int:
    path, note = pull(args.name, dest=Path(args.dest) if args.dest else None)
    print(f"installed {args.name} at {path}")
    print(note)
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from agent.detection.quantize import quantize_model

    if args.frames < 1:
        raise ModelError(f"--frames must be at least 1, got {args.frames}")
    result = quantize_model(args.name, Path(args.calibration), frames=args.frames, out_name=args.out_name)
    print(f"installed {result.name} at {result.path}")
    print(
        f"INT8 QDQ copy of {result.base}, calibrated on {result.frames} frames; sha256 {result.sha256} "
        f"recorded in the user store's index; set detector.model: {result.name}"
    )
    share = result.matched_boxes / result.float_boxes if result.float_boxes else 1.0
    print(
        f"on the calibration frames it finds {result.matched_boxes} of the float model's {result.float_boxes} "
        f"boxes (IoU 0.5, same class){'' if share >= 0.8 else '; that is low: check AP before using it'}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, verify, download and quantize detector models",
        description="Detector models from the manifest, looked up on EDGE_AGENT_MODEL_PATH "
        "then in the user cache ($XDG_CACHE_HOME/edge-agent/models).",
    )
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p_list = sub.add_parser("list", help="show every manifest model and where its file was found")
    p_list.set_defaults(handler=_cmd_list)
    p_verify = sub.add_parser("verify", help="check sha256 and output shapes (exit 1 on any failure)")
    p_verify.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all)")
    p_verify.set_defaults(handler=_cmd_verify)
    p_pull = sub.add_parser("pull", help="download a model from its official URL into the cache")
    p_pull.add_argument("name", metavar="NAME")
    p_pull.add_argument("--dest", metavar="DIR", help="install directory (default: the user cache)")
    p_pull.set_defaults(handler=_cmd_pull)
    p_quant = sub.add_parser(
        "quantize",
        help="write an INT8 (static QDQ) copy of a manifest model, calibrated on a site clip",
        description="Calibrate on frames of CLIP, preprocessed as the detector does, and register the "
        "INT8 copy in the user cache as NAME-int8 (or --out-name) with its own sha256.",
    )
    p_quant.add_argument("name", metavar="NAME", help="manifest model to quantize")
    p_quant.add_argument("--calibration", required=True, metavar="CLIP", help="video file of the site")
    p_quant.add_argument("--frames", type=int, default=32, metavar="N", help="calibration frames (default: 32)")
    p_quant.add_argument("--out-name", metavar="NAME", help="name of the copy (default: NAME-int8)")
    p_quant.set_defaults(handler=_cmd_quantize)
