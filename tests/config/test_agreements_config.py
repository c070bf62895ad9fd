"""Sharing agreements in the site config: mistakes are refused at the line of the field that makes them, the
digest follows the terms and the signed document, and `validate` warns before an agreement lapses."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import load_config
from tests.config.test_recipient_feedback import issues_of

REPO = Path(__file__).resolve().parents[2]
TODAY = datetime.now(UTC).date()

SITE = """\
site:
  id: site-1
  name: Test site
  location: {lat: 51.5, lon: -0.12}
cameras:
  - id: cam-a
    source: rtsp://10.0.0.5/stream1
    detect_fps: 5
policies:
"""


def agreement(agreement_id: str, until: str | None = None, extra: str = "") -> str:
    return (
        f"    - id: {agreement_id}\n"
        "      parties: [Acme Guarding Ltd, City Police]\n"
        "      purpose: Dispatch to intrusions\n"
        "      legal_basis: Ordinance 12-3\n"
        f"      valid_from: {TODAY - timedelta(days=10)}\n"
        f"      valid_until: {until or TODAY + timedelta(days=365)}\n"
        "      review_contact: dpo@acme.example\n" + extra
    )


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE + body)
    return path


def test_recipients_must_name_a_listed_agreement_and_stay_within_what_it_shares(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "  agreements:\n"
        + agreement("dsa", extra="      shares: {fields: [info], max_location_decimals: 2}\n      retention_s: 600\n")
        + "  recipients:\n"
        "    - name: police\n"  # its agreement defaults to its name, which is not listed
        "    - name: rtcc\n"
        "      agreement: dsa\n"
        "      fields: [info.headline, detection.count]\n"
        "      location_decimals: 4\n"
        "      retention_s: 900\n"
        "      snapshots: {enabled: true}\n",
    )
    assert issues_of(path) == [
        f"{path}:21: policies.recipients.0.agreement: no agreement is listed as 'police' (listed: dsa)",
        f"{path}:24: policies.recipients.1.fields.1: agreement dsa does not share detection.count",
        f"{path}:25: policies.recipients.1.location_decimals: agreement dsa allows at most 2 decimals",
        f"{path}:26: policies.recipients.1.retention_s: agreement dsa asks for at most 600 s",
        f"{path}:27: policies.recipients.1.snapshots.enabled: agreement dsa shares no snapshots",
    ]


def test_release_terms_and_dates_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "  agreements:\n"
        + agreement("held", extra="      release: after_verification\n      verifier: nobody\n")
        + agreement("backwards", until=str(TODAY - timedelta(days=20)))
        + agreement("nothing-held", extra="      auto_release_after_s: 60\n")
        + "  recipients:\n    - name: police\n      agreement: held\n",
    )
    assert issues_of(path) == [
        f"{path}:20: policies.agreements.1: valid_until is before valid_from",
        f"{path}:27: policies.agreements.2: auto_release_after_s set with release immediate: nothing is held",
    ]
    path = write(
        tmp_path,
        "  agreements:\n"
        + agreement("held", extra="      release: after_verification\n      verifier: nobody\n")
        + agreement("own", extra="      release: after_verification\n      verifier: police\n")
        + "  recipients:\n    - {name: police, agreement: held}\n",
    )
    assert issues_of(path) == [
        f"{path}:19: policies.agreements.0.verifier: no recipient is named 'nobody'",
        f"{path}:28: policies.agreements.1.verifier: the verifier's own alerts are held too: nobody could verify them",
    ]


def test_the_digest_follows_the_terms_and_the_signed_text(tmp_path: Path) -> None:
    text = tmp_path / "dsa.pdf"
    text.write_bytes(b"%PDF signed agreement v1")
    body = "  agreements:\n" + agreement("dsa", extra="      text_file: dsa.pdf\n")
    body += "  recipients:\n    - name: police\n      agreement: dsa\n"
    first = load_config(write(tmp_path, body)).policies.agreements[0]
    assert first.digest.startswith("sha256:") and len(first.digest) == 71
    text.write_bytes(b"%PDF signed agreement v2")
    assert load_config(write(tmp_path, body)).policies.agreements[0].digest != first.digest
    changed = body.replace("Dispatch to intrusions", "Dispatch to intrusions and fires")
    text.write_bytes(b"%PDF signed agreement v1")
    assert load_config(write(tmp_path, changed)).policies.agreements[0].digest != first.digest
    text.unlink()
    (issue,) = issues_of(tmp_path / "site.yaml")
    assert issue.endswith(
        f"policies.agreements.0.text_file: cannot read the agreement text {text}: No such file or directory"
    )


def test_validate_warns_before_an_agreement_lapses_and_when_it_has(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "  agreements:\n"
        + agreement("soon", until=str(TODAY + timedelta(days=12)))
        + agreement("later", until=str(TODAY + timedelta(days=200)))
        + agreement("over", until=str(TODAY - timedelta(days=1)))
        + "  recipients:\n"
        "    - {name: police, agreement: soon}\n"
        "    - {name: soc, agreement: later}\n"
        "    - {name: fire, agreement: over}\n",
    )
    run = subprocess.run(
        [sys.executable, "-m", "agent", "validate", str(path)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {path}: agreement soon ends {TODAY + timedelta(days=12)} (in 12 days): "
        "renew it or police will get nothing",
        f"warning: {path}: agreement over ended {TODAY - timedelta(days=1)}: nothing is shared with fire",
    ]
