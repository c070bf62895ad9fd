"""The site's signing key and signer: JWS envelopes, key files, exported JWKs, key rotation."""

from __future__ import annotations

import json
import math
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.delivery import jws
from agent.delivery.signing import (
    AlertSigner,
    generate_key_file,
    load_or_create_signing_key,
    load_signing_key,
    payload_bytes,
    write_public_key_files,
)
from agent.errors import AgentError

REPO = Path(__file__).resolve().parents[2]
VIEW = {"schema_version": 2, "identifier": "a-1", "headline": "Person in yard après 22:00", "info": {"n": [1, 2.5]}}


def edge_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "--log-level", "error", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def opened(envelope: bytes) -> jws.OpenedEnvelope:
    return jws.open_envelope(envelope)


def test_an_alert_is_a_flattened_jws_over_its_json_bytes(signer: AlertSigner, signing_key_file: Path) -> None:
    envelope = signer.sign(VIEW)
    assert set(json.loads(envelope)) == {"protected", "payload", "signature"}
    got = opened(envelope)
    assert (got.kid, got.typ) == (signer.kid, "edge-alert+json")
    public = load_signing_key(signing_key_file).public_key()
    payload = jws.verify_envelope(got, public)
    # What was signed is the view's compact UTF-8 JSON in the order given, non-ASCII unescaped.
    assert payload.startswith('{"schema_version":2,"identifier":"a-1","headline":"Person in yard après'.encode())
    assert payload == payload_bytes(VIEW) and json.loads(payload) == VIEW


def test_the_default_key_id_is_the_rfc7638_thumbprint_and_the_config_can_name_another(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path / "k.pem")
    assert AlertSigner(key).kid == jws.key_id_for(key.public_key())
    named = AlertSigner.from_file(tmp_path / "k.pem", "depot-north-2026")
    assert opened(named.sign(VIEW)).kid == "depot-north-2026"
    assert named.public_jwk()["kid"] == "depot-north-2026"


def test_signing_is_deterministic(signer: AlertSigner) -> None:
    assert signer.sign(VIEW) == signer.sign(json.loads(json.dumps(VIEW)))


@pytest.mark.parametrize(
    ("message", "why"),
    [({"dwell_s": math.nan}, "Out of range float"), ({"at": object()}, "not JSON serializable")],
)
def test_a_message_json_cannot_carry_is_refused_by_name(signer: AlertSigner, message: dict, why: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(AgentError, match=f"message cannot be serialised as JSON: .*{why}"):
        signer.sign(message)


def test_new_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k" / "site.pem"
    load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    load_or_create_signing_key(path)
    assert path.read_bytes() == first
    with pytest.raises(AgentError, match="already exists; refusing to overwrite a signing key"):
        generate_key_file(path)
    assert path.read_bytes() == first


def test_a_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    with pytest.raises(AgentError, match=f"cannot read signing key {garbage}"):
        load_signing_key(garbage)
    with pytest.raises(AgentError, match="cannot read signing key"):
        load_signing_key(tmp_path / "missing.pem")


def test_export_public_writes_a_jwk_and_a_jwk_set_and_no_private_part(tmp_path: Path) -> None:
    made = edge_agent("keys", "generate", "--out", str(tmp_path / "site-signing.pem"))
    assert made.returncode == 0, made.stderr
    kid = made.stdout.strip().split("kid=")[1]
    done = edge_agent(
        "keys", "export-public", "--key", str(tmp_path / "site-signing.pem"), "--out", str(tmp_path / "pub")
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'pub' / 'site-signing.jwk'}\tkid={kid}",
        f"{tmp_path / 'pub' / 'site-signing.jwks.json'}\tkid={kid}",
    ]
    jwk = json.loads((tmp_path / "pub" / "site-signing.jwk").read_text())
    assert jwk.keys() == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"], jwk["kid"]) == ("OKP", "Ed25519", "Ed25519", "sig", kid)
    assert json.loads((tmp_path / "pub" / "site-signing.jwks.json").read_text()) == {"keys": [jwk]}
    # The JWK is the key that signs: an envelope from the site verifies with it, by the kid in its header.
    signer = AlertSigner.from_file(tmp_path / "site-signing.pem")
    envelope = opened(signer.sign(VIEW))
    assert envelope.kid == jwk["kid"]
    assert jws.verify_envelope(envelope, jws.public_key_from_jwk(jwk)) == payload_bytes(VIEW)


def test_export_public_can_also_write_the_pem_and_takes_the_configured_kid(tmp_path: Path) -> None:
    key = generate_key_file(tmp_path / "site.pem")
    done = edge_agent(
        "keys", "export-public", "--key", str(tmp_path / "site.pem"), "--out", str(tmp_path), "--kid", "north-1"
    )
    assert done.returncode == 0 and not (tmp_path / "site.pub.pem").exists()
    assert json.loads((tmp_path / "site.jwk").read_text())["kid"] == "north-1"
    files = write_public_key_files(key, tmp_path / "out", "north", pem=True)
    assert files.pem == tmp_path / "out" / "north.pub.pem"
    public = serialization.load_pem_public_key(files.pem.read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    assert public.public_bytes_raw() == key.public_key().public_bytes_raw()
    assert b"PRIVATE" not in files.pem.read_bytes()
    assert (tmp_path / "site.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # untouched


def test_export_public_help_names_the_files_it_writes() -> None:
    done = edge_agent("keys", "export-public", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "edge-agent keys export-public --key var/keys/site-signing.pem --out DIR" in text
    assert "DIR/site-signing.jwk" in text and "DIR/site-signing.jwks.json" in text and "--pem" in text


@pytest.mark.parametrize("name", ["../escape", "-rf", ".hidden", "a/b", ""])
def test_a_public_key_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, name: str) -> None:
    key = generate_key_file(tmp_path / "k.pem")
    with pytest.raises(AgentError, match="must be a plain file name"):
        write_public_key_files(key, tmp_path / "out", name)


def test_rotation_old_and_new_keys_verify_during_overlap(tmp_path: Path) -> None:
    """Both exported JWKs in one set: each envelope is verified by the key its kid names."""
    signers = {}
    keys = []
    for name in ("old", "new"):
        key = generate_key_file(tmp_path / f"{name}.pem")
        signers[name] = AlertSigner(key)
        files = write_public_key_files(key, tmp_path / "pub", name)
        keys.append(json.loads(files.jwk.read_text()))
    by_kid = {k["kid"]: jws.public_key_from_jwk(k) for k in jws.jwk_set(keys)["keys"]}
    assert len(by_kid) == 2
    for signer in signers.values():
        envelope = opened(signer.sign(VIEW))
        assert jws.verify_envelope(envelope, by_kid[envelope.kid]) == payload_bytes(VIEW)
    # The old key no longer verifies what the new one signed: a kid is bound to its key.
    new_envelope = opened(signers["new"].sign(VIEW))
    with pytest.raises(jws.EnvelopeInvalid, match="does not verify"):
        jws.verify_envelope(new_envelope, by_kid[signers["old"].kid])
