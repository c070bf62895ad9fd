"""The shipped systemd unit as systemd itself reads it.

`systemd-analyze verify` prints a warning and carries on for a key in the
wrong section, so a unit can look installed while part of it is ignored
(the restart rate limit, for one). These tests fail on any such output and
hold the unit's hardening at the exposure level it is documented with.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "config" / "edge-agent.service"
# `systemd-analyze security` scores 0 (locked down) to 10; the README documents 2.0.
MAX_EXPOSURE = 2.0


def _installed_unit(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointed at the command this environment installed."""
    command = Path(sys.executable).with_name("edge-agent")
    assert command.is_file(), f"edge-agent is not installed beside {sys.executable}"
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={command}", UNIT.read_text(), count=1, flags=re.M)
    unit = tmp_path / "edge-agent.service"
    unit.write_text(text)
    return unit


def test_systemd_accepts_every_line_of_the_unit(tmp_path: Path) -> None:
    unit = _installed_unit(tmp_path)
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    output = (run.stdout + run.stderr).strip()
    assert run.returncode == 0, output
    assert output == "", f"systemd-analyze verify complained:\n{output}"


def test_restart_rate_limit_is_in_the_unit_section() -> None:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            sections.setdefault(current, []).append(line.split("=", 1)[0])
    assert {"StartLimitIntervalSec", "StartLimitBurst"} <= set(sections["Unit"])
    assert not {"StartLimitIntervalSec", "StartLimitBurst"} & set(sections["Service"])


def test_hardening_exposure_stays_at_most_documented(tmp_path: Path) -> None:
    unit = _installed_unit(tmp_path)
    run = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", run.stdout + run.stderr)
    assert match is not None, run.stdout + run.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, match.group(0)
