"""CSV cells a spreadsheet will not run: the one guard every CSV the product writes goes through.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is
taken for a formula by spreadsheet programs (CSV injection); text that
arrived from the network (a site's headline, a recipient's name) must never
be one. Such a cell gets a leading `'`, which spreadsheets show as text.
"""

from __future__ import annotations

__all__ = ["neutralise"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """`cell` made safe from spreadsheet formula evaluation."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell
