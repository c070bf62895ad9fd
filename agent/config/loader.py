"""Reading a site config: YAML with line marks, `${ENV}` placeholders, `--set` overrides.

Errors are collected, not raised one at a time: `load_config` raises one
`ConfigError` holding every problem, each with the file, the line of the
offending value (found through the YAML node marks), the dotted field path
and the reason. The file and every `--set` value are held to the bounds of
`agent.config.yaml_bounds` (size, nesting, alias expansion) before they are
built into data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.config.rule_configs import RULE_KINDS
from agent.config.site_config import SiteConfig
from agent.config.yaml_bounds import check_yaml_bounds, read_bounded
from agent.errors import ConfigError, ConfigIssue

__all__ = ["MarkedData", "apply_overrides", "load_config", "parse_override", "validate_yaml_file"]

FieldPath = tuple[str | int, ...]
_Model = TypeVar("_Model", bound=BaseModel)
# ${NAME} or ${NAME:-default}; `$${` escapes a literal `${`.
_ENV_PATTERN = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MarkedData:
    """Plain Python data from a YAML file plus the line of every value."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[FieldPath, int] = {}
        self.issues: list[ConfigIssue] = []

    def convert(self, node: yaml.Node, path: FieldPath) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(child, (*path, i)) for i, child in enumerate(node.value)]
        value = _resolve_scalar(node)
        return self._expand_env(value, path) if isinstance(value, str) else value

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                self.issues.append(
                    ConfigIssue(
                        self.file,
                        key_node.start_mark.line + 1,
                        _dotted((*path, key)),
                        "key appears twice in the same mapping",
                    )
                )
            out[key] = self.convert(value_node, (*path, key))
        return out

    def _expand_env(self, text: str, path: FieldPath) -> str:
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is not None:
                return value
            if default is not None:
                return default
            self.issues.append(
                ConfigIssue(self.file, self.lines.get(path), _dotted(path), f"environment variable {name} is not set")
            )
            return ""

        return _ENV_PATTERN.sub(substitute, text).replace("$${", "${")


def _resolve_scalar(node: yaml.Node) -> Any:
    """Build the Python value of a scalar node with the safe loader's type rules."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.0.c=value` into its path and a YAML-typed value.

    Raises:
        ConfigError: when the text has no `=` or an empty path.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([ConfigIssue("--set", None, text, "expected dotted.path=value")])
    try:
        if raw.strip():
            check_yaml_bounds(raw, "--set")
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `dotted.path=value` applied in order.

    Raises:
        ConfigError: when a path goes through a value that is not a mapping or
            a list, or indexes past the end of a list.
    """
    import copy

    result = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        _set_path(result, keys, value, text)
    return result


def _set_path(data: Any, keys: list[str], value: Any, text: str) -> None:
    node = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(
                    [ConfigIssue("--set", None, where, f"{text!r}: list has {len(node)} items, no index {key!r}")]
                )
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise ConfigError([ConfigIssue("--set", None, where, f"{text!r}: not a mapping or list")])


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> SiteConfig:
    """Read, expand and validate a site config file.

    Relative paths inside the file (sources, outbox, TLS files) are resolved
    against the file's folder, so a config works from any working directory.

    Raises:
        ConfigError: with every problem found, each naming file, line and field.
    """
    # The folder lets a validator read a file the config names relative to it (feedback_keys).
    folder = Path(path).resolve().parent
    config, _ = validate_yaml_file(path, SiteConfig, overrides=overrides, context={"config_dir": folder})
    return _resolve_relative_paths(config, folder)


def validate_yaml_file(
    path: str | Path,
    model: type[_Model],
    *,
    overrides: Sequence[str] = (),
    context: dict[str, Any] | None = None,
) -> tuple[_Model, MarkedData]:
    """Read a YAML file within the bounds of untrusted input and validate it as `model`.

    Returns the model and the file's value lines (for checks that span entries).

    Raises:
        ConfigError: with every problem found, each naming file, line and field.
    """
    marked = MarkedData(str(path))
    data = _parse_file(Path(path), marked)
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        parsed = model.model_validate(data, context=context)
    except ValidationError as err:
        # A field already reported (an unset ${ENV}) is not reported twice.
        reported = {i.field for i in marked.issues}
        issues = marked.issues + [i for i in _issues_from(err, marked) if i.field not in reported]
        raise ConfigError(sorted(issues, key=lambda i: (i.line or 0, i.field))) from None
    if marked.issues:
        raise ConfigError(marked.issues)
    return parsed, marked


def _parse_file(path: Path, marked: MarkedData) -> dict[str, Any]:
    file = str(path)
    try:
        text = read_bounded(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(file, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue(file, None, "", f"cannot read: {err}")]) from None
    try:
        check_yaml_bounds(text, file)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        reason = f"YAML syntax: {err.problem}" if err.problem else "YAML syntax error"
        raise ConfigError([ConfigIssue(file, line, "", reason)]) from None
    if root is None:
        raise ConfigError([ConfigIssue(file, None, "", "file is empty")])
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError([ConfigIssue(file, root.start_mark.line + 1, "", "top level must be a mapping")])
    data = marked.convert(root, ())
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, "", "top level must be a mapping")])
    return data


def _issues_from(err: ValidationError, marked: MarkedData) -> list[ConfigIssue]:
    issues = []
    for item in err.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p in RULE_KINDS))
        line = _nearest_line(loc, marked.lines)
        reason = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            reason = "unknown key (not part of the config schema)"
        issues.append(ConfigIssue(marked.file, line, _dotted(loc), reason))
    return issues


def _nearest_line(loc: FieldPath, lines: dict[FieldPath, int]) -> int | None:
    """Line of the value at `loc`, or of its closest ancestor that is in the file."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def _resolve_relative_paths(config: SiteConfig, base: Path) -> SiteConfig:
    def absolute(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else base / p

    cameras = []
    for cam in config.cameras:
        source = cam.source
        if isinstance(source, str) and "://" not in source and not Path(source).is_absolute():
            source = str((base / source).resolve())
        cameras.append(cam.model_copy(update={"source": source}))
    tls = config.mqtt.tls
    tls = tls.model_copy(
        update={k: absolute(getattr(tls, k)) or getattr(tls, k) for k in ("ca_file", "cert_file", "key_file")}
    )
    mqtt = config.mqtt.model_copy(
        update={
            "tls": tls,
            "password_file": absolute(config.mqtt.password_file) or config.mqtt.password_file,
        }
    )
    outbox = config.outbox.model_copy(update={"path": absolute(config.outbox.path) or config.outbox.path})
    signing = config.signing.model_copy(
        update={"key_file": absolute(config.signing.key_file) or config.signing.key_file}
    )
    runtime = config.runtime.model_copy(
        update={
            "state_dir": absolute(config.runtime.state_dir) or config.runtime.state_dir,
            "numba_cache_dir": absolute(config.runtime.numba_cache_dir) or config.runtime.numba_cache_dir,
        }
    )
    pol = config.policies
    model_path = pol.face_detector.model_path
    faces = pol.face_detector.model_copy(update={"model_path": absolute(model_path) or model_path})
    policies = pol.model_copy(
        update={
            "pseudonym_key_file": absolute(pol.pseudonym_key_file) or pol.pseudonym_key_file,
            "audit_log": absolute(pol.audit_log) or pol.audit_log,
            "face_detector": faces,
        }
    )
    return config.model_copy(
        update={
            "cameras": cameras,
            "mqtt": mqtt,
            "outbox": outbox,
            "signing": signing,
            "policies": policies,
            "runtime": runtime,
        }
    )
