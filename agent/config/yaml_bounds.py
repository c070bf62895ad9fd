"""The bounds a YAML text must keep before it is built into data: size, nesting, and what aliases expand to.

A config file comes from outside the agent: `edge-agent validate`, the start
and every SIGHUP reload read it. YAML lets a few lines grow without bound:
nine lines of ten aliases each ("billion laughs") expand to 10**9 values, an
alias inside the collection it names never ends, and thousands of nested
brackets exhaust the stack of a recursive builder. So the text is first
walked as a stream of parser events (which needs no recursion and holds no
built data), and refused at the first event that crosses a bound:

- the file is at most `MAX_FILE_BYTES` (a site with dozens of cameras is a
  few tens of kilobytes);
- collections nest at most `MAX_DEPTH` levels (the config's own deepest
  value, a day of a rule's schedule window, is 9 collections down);
- the document, with every alias expanded, holds at most `MAX_VALUES` values;
- no alias refers to a collection that contains it.

Aliases themselves are allowed: sharing one schedule between rules is a real
use. Counting aliases would not help (the bomb above uses 90); what they
expand to is what costs memory, so that is what is bounded.
"""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_VALUES", "check_yaml_bounds", "read_bounded"]

from dataclasses import dataclass
from pathlib import Path

import yaml

from agent.errors import ConfigError, ConfigIssue

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_VALUES = 100_000


def read_bounded(path: Path) -> bytes:
    """The file's bytes, read no further than one byte past the limit.

    Raises:
        ConfigError: the file is over `MAX_FILE_BYTES`.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        reason = f"file is over the limit of {MAX_FILE_BYTES} bytes ({MAX_FILE_BYTES >> 20} MiB) for a site config"
        raise ConfigError([ConfigIssue(str(path), None, "", reason)])
    return data


@dataclass(slots=True)
class _Open:
    """A collection whose end event has not come yet."""

    is_mapping: bool
    anchor: str | None
    values: int = 1  # values inside once aliases are expanded, itself included
    index: int = 0  # sequences: index of the next item
    key: str | None = None  # mappings: key of the value being read; None while a key is expected

    def slot(self) -> str | int:
        return (self.key or "?") if self.is_mapping else self.index

    def advance(self, scalar: str | None) -> None:
        """One child node is complete (`scalar`: its text, when it was a scalar)."""
        if not self.is_mapping:
            self.index += 1
        elif self.key is None:
            self.key = scalar if scalar is not None else "?"
        else:
            self.key = None


def check_yaml_bounds(text: str, file: str) -> None:
    """Walk the parser events of `text` and refuse the first one past a bound (see the module docstring).

    Raises:
        ConfigError: naming `file`, the line and the field where a bound is crossed.
        yaml.YAMLError: the text is not YAML (the caller reports it with its own wording).
    """
    walk = _Walk(file)
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        walk.feed(event)


class _Walk:
    def __init__(self, file: str) -> None:
        self._file = file
        self._open: list[_Open] = []
        self._sizes: dict[str, int] = {}
        self._total = 0

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self._add(1, event)
            if event.anchor:
                self._sizes[event.anchor] = 1
            self._advance(event.value)
        elif isinstance(event, yaml.AliasEvent):
            anchor = str(event.anchor)
            if any(o.anchor == anchor for o in self._open):
                self._refuse(event, f"alias *{anchor} refers to a collection that contains it")
            # An undefined alias is left to the composer, which names it.
            self._add(self._sizes.get(anchor, 1), event)
            self._advance(None)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(self._open) >= MAX_DEPTH:
                self._refuse(event, f"collections nested deeper than {MAX_DEPTH} levels")
            # Counted into its parent when it ends, with everything inside it.
            self._add(1, event, into_parent=False)
            self._open.append(_Open(isinstance(event, yaml.MappingStartEvent), event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = self._open.pop()
            if done.anchor:
                self._sizes[done.anchor] = done.values
            if self._open:
                self._open[-1].values += done.values
            self._advance(None)

    def _add(self, values: int, event: yaml.Event, *, into_parent: bool = True) -> None:
        self._total += values
        if into_parent and self._open:
            self._open[-1].values += values
        if self._total > MAX_VALUES:
            self._refuse(event, f"more than {MAX_VALUES} values once aliases are expanded")

    def _advance(self, scalar: str | None) -> None:
        if self._open:
            self._open[-1].advance(scalar)

    def _refuse(self, event: yaml.Event, reason: str) -> None:
        field = ".".join(str(o.slot()) for o in self._open)
        line = event.start_mark.line + 1 if event.start_mark else None
        raise ConfigError([ConfigIssue(self._file, line, field, reason)])
