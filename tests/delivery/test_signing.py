"""Signed envelopes, key files, trust directories and key rotation."""

from __future__ import annotations

import argparse
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli import keys_command as keys_cli
from agent.delivery.signing import (
    AlertSigner,
    SignatureInvalid,
    TrustStore,
    load_or_create_signing_key,
    verify_envelope,
)

IAT = datetime(2024, 5, 1, 22, 0, tzinfo=UTC)
ALERT = {"identifier": "a-1", "headline": "Person in yard après 22:00", "info": [{"severity": "Severe"}]}


def test_envelope_verifies_and_keeps_the_alert_readable(signer: AlertSigner, trust: TrustStore) -> None:
    payload = signer.sign(ALERT, "a-1", IAT)
    envelope = json.loads(payload)
    assert envelope["alert"] == ALERT and envelope["signature"]["alg"] == "EdDSA"
    verified = verify_envelope(payload, trust)
    assert (verified.alert, verified.alert_id, verified.kid, verified.issued_at) == (ALERT, "a-1", signer.kid, IAT)


def test_signing_is_deterministic(signer: AlertSigner) -> None:
    assert signer.sign(ALERT, "a-1", IAT) == signer.sign(dict(reversed(list(ALERT.items()))), "a-1", IAT)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e["alert"].update(headline="nothing to see"),
        lambda e: e["signature"].update(alert_id="a-2"),
        lambda e: e["signature"].update(iat="2030-01-01T00:00:00.000Z"),
        lambda e: e["signature"].update(sig=e["signature"]["sig"][:-4] + "AAAA"),
    ],
)
def test_tampered_envelopes_are_refused(signer: AlertSigner, trust: TrustStore, tamper) -> None:
    envelope = json.loads(signer.sign(ALERT, "a-1", IAT))
    tamper(envelope)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_envelope(json.dumps(envelope).encode(), trust)


@pytest.mark.parametrize("payload", [b"not json", b"{}", b'{"alert": 1, "signature": {}}', b"\xff"])
def test_malformed_payloads_are_refused(trust: TrustStore, payload: bytes) -> None:
    with pytest.raises(SignatureInvalid, match="malformed"):
        verify_envelope(payload, trust)


def test_unknown_key_is_refused(tmp_path: Path, trust: TrustStore) -> None:
    other = AlertSigner(load_or_create_signing_key(tmp_path / "other.pem"))
    with pytest.raises(SignatureInvalid, match="unknown key id"):
        verify_envelope(other.sign(ALERT, "a-1", IAT), trust)


def test_new_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "k" / "site.pem"
    load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    load_or_create_signing_key(path)
    assert path.read_bytes() == first


def test_rotation_old_and_new_keys_verify_during_overlap(tmp_path: Path) -> None:
    trust_dir = tmp_path / "trust"
    for name in ("old", "new"):
        args = argparse.Namespace(out=tmp_path / f"{name}.pem")
        assert keys_cli._generate(args) == 0
        assert keys_cli._export(argparse.Namespace(key=tmp_path / f"{name}.pem", out=trust_dir, kid=None)) == 0
    trust = TrustStore.from_dir(trust_dir)
    old = AlertSigner.from_file(tmp_path / "old.pem")
    new = AlertSigner.from_file(tmp_path / "new.pem")
    assert {verify_envelope(s.sign(ALERT, "a-1", IAT), trust).kid for s in (old, new)} == {old.kid, new.kid}
    (trust_dir / f"{old.kid}.pem").unlink()
    with pytest.raises(SignatureInvalid, match="unknown key id"):
        verify_envelope(old.sign(ALERT, "a-1", IAT), TrustStore.from_dir(trust_dir))


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    from agent.errors import AgentError

    keys_cli._generate(argparse.Namespace(out=tmp_path / "k.pem"))
    with pytest.raises(AgentError, match="already exists"):
        keys_cli._generate(argparse.Namespace(out=tmp_path / "k.pem"))
