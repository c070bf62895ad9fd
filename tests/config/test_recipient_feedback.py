"""A recipient's status keys and escalation settings: read and checked when the config loads, every mistake
named with its file, line and field (the same way `edge-agent validate` reports it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import load_config
from agent.delivery.feedback_keys import read_feedback_keys
from agent.delivery.jws import jwk_set, key_id_for, public_jwk
from agent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

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
  recipients:
"""


def config_with(tmp_path: Path, recipients: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE + recipients)
    return path


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(i) for i in info.value.issues]


def test_a_key_file_is_read_relative_to_the_config_and_a_set_holds_every_key(tmp_path: Path) -> None:
    old, new = Ed25519PrivateKey.generate().public_key(), Ed25519PrivateKey.generate().public_key()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "police.jwks").write_text(json.dumps(jwk_set([public_jwk(old), public_jwk(new, "2027")])))
    path = config_with(tmp_path, "    - name: police\n      feedback_keys: keys/police.jwks\n")
    config = load_config(path)
    keys_file = config.policies.recipients[0].feedback_keys
    assert keys_file == tmp_path / "keys" / "police.jwks"
    assert set(read_feedback_keys(keys_file)) == {key_id_for(old), "2027"}  # a kid, else the RFC 7638 thumbprint


def test_a_key_file_that_is_missing_or_wrong_is_refused_at_its_line(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    leaked = {**public_jwk(private.public_key()), "d": raw.hex()}
    (tmp_path / "private.jwk").write_text(json.dumps(leaked))
    (tmp_path / "rsa.jwk").write_text(json.dumps({"kty": "RSA", "n": "AQAB", "e": "AQAB"}))
    (tmp_path / "broken.jwk").write_text("{not json")
    path = config_with(
        tmp_path,
        "    - name: a\n      feedback_keys: missing.jwk\n"
        "    - name: b\n      feedback_keys: private.jwk\n"
        "    - name: c\n      feedback_keys: rsa.jwk\n"
        "    - name: d\n      feedback_keys: broken.jwk\n",
    )
    issues = issues_of(path)
    where = f"{path}:"
    assert issues == [
        f"{where}12: policies.recipients.0.feedback_keys: key file {tmp_path / 'missing.jwk'} does not exist",
        f"{where}14: policies.recipients.1.feedback_keys: key file {tmp_path / 'private.jwk'}: "
        "the JWK holds a private key (d); give the public key only",
        f"{where}16: policies.recipients.2.feedback_keys: key file {tmp_path / 'rsa.jwk'}: "
        "not an Ed25519 JWK (kty OKP, crv Ed25519, x)",
        f"{where}18: policies.recipients.3.feedback_keys: key file {tmp_path / 'broken.jwk'} is not a JWK or "
        "JWK Set: not UTF-8 JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ]


def test_escalation_mistakes_are_refused_at_the_field_that_makes_them(tmp_path: Path) -> None:
    path = config_with(
        tmp_path,
        "    - name: police\n      escalate_to: nobody\n"
        "    - name: soc\n      escalate_to: fire\n"
        "    - name: fire\n      escalate_to: soc\n",
    )
    assert issues_of(path) == [
        f"{path}:12: policies.recipients.0.escalate_to: no recipient is named 'nobody'",
        f"{path}:14: policies.recipients.1.escalate_to: escalation goes round in a circle: soc -> fire -> soc",
    ]
    path = config_with(
        tmp_path,
        "    - name: police\n      escalate_to: police\n"
        "    - name: soc\n      escalate_after_s: 60\n      escalate_min_severity: Extreme\n",
    )
    assert issues_of(path) == [
        f"{path}:12: policies.recipients.0.escalate_to: escalate_to names the recipient itself",
        f"{path}:14: policies.recipients.1.escalate_after_s: set without escalate_to: nothing would escalate",
        f"{path}:15: policies.recipients.1.escalate_min_severity: set without escalate_to: nothing would escalate",
    ]


def test_validate_reports_a_missing_key_file_like_every_other_config_error(tmp_path: Path) -> None:
    path = config_with(tmp_path, "    - name: police\n      feedback_keys: police.jwk\n      escalate_to: soc\n")

    def validate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent", "validate", str(path)], capture_output=True, text=True, cwd=REPO, timeout=60
        )

    run = validate()
    missing = tmp_path / "police.jwk"
    assert (run.returncode, run.stderr) == (
        2,
        f"error: {path}:12: policies.recipients.0.feedback_keys: key file {missing} does not exist\n",
    )
    missing.write_text(json.dumps(public_jwk(Ed25519PrivateKey.generate().public_key())))
    run = validate()
    assert (run.returncode, run.stderr) == (
        2,
        f"error: {path}:13: policies.recipients.0.escalate_to: no recipient is named 'soc'\n",
    )
