"""The scorecard as a table a partnership reads: one block per drill, one row per recipient."""

from __future__ import annotations

__all__ = ["scorecard_text"]

from agent.drills.scorecard import DrillScore, RecipientScore

_SHOWN = ("received", "acknowledged", "verified", "dispatched", "on_scene", "closed")


def _cell(score: RecipientScore, kind: str) -> str:
    s = score.summary(kind)
    if not s["count"]:
        return "-"
    return f"{s['count']} ({s['median_s']:.1f}/{s['max_s']:.1f}s)"


def scorecard_text(drills: list[DrillScore]) -> str:
    """Each drill's header, its recipients' table (count, median/max seconds from publish), and what was missed."""
    if not drills:
        return "no drills in this audit log (for these filters)\n"
    out: list[str] = []
    for drill in drills:
        out.append(
            f"drill {drill.drill_id}  scenario {drill.scenario}  camera {drill.camera}  {drill.state}\n"
            f"  {drill.started} -> {drill.finished or '(no drill_finished record)'}  {drill.messages} messages"
        )
        header = ["recipient", "alerts", *_SHOWN, "missed", "unacked"]
        rows = [
            [
                r.recipient,
                str(len(r.alerts)),
                *(_cell(r, k) for k in _SHOWN),
                str(sum(a.missed for a in r.alerts)),
                str(sum(a.unacknowledged for a in r.alerts)),
            ]
            for r in drill.recipients
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            out.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        out.append("  (count (median/max seconds from publish))")
        for r in drill.recipients:
            missed = [a.alert_id for a in r.alerts if a.missed]
            unacked = [a.alert_id for a in r.alerts if a.unacknowledged and not a.missed]
            if not r.alerts:
                out.append(f"  {r.recipient}: received no drill alert")
            if missed:
                out.append(f"  {r.recipient}: no received for {', '.join(missed)}")
            if unacked:
                out.append(f"  {r.recipient}: received but not acknowledged: {', '.join(unacked)}")
        out.append("")
    return "\n".join(out)
