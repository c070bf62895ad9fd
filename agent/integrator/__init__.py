"""Integrator tools: see what the agent sees before a site goes live.

`preview` draws a camera's config over one of its frames, `annotate` writes
an annotated copy of a replay, `tune` sweeps thresholds over one cached
detection pass, and `zone_checks` warns about zones that are too small or
too large to be meant.
"""

from __future__ import annotations

__all__: list[str] = []
