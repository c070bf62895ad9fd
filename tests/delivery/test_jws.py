"""The JWS profile every message uses: flattened JSON, alg Ed25519, header exactly alg/kid/typ, bounded parsing.

Hostile envelopes here are built by hand and, where it matters, validly signed
over what they claim, so a refusal shows the profile check, not a bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws as joserfc_jws
from joserfc.jwk import OKPKey

from agent.delivery import jws

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KID = jws.key_id_for(KEY.public_key())
PAYLOAD = '{"schema_version":2,"identifier":"a-1","headline":"Einbruch: Hof Süd"}'.encode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def handmade(header: Any, /, payload: bytes = PAYLOAD, key: Ed25519PrivateKey = KEY, **outer: Any) -> bytes:
    """A flattened JWS with any header, signed (RFC 7515 signing input) with `key`."""
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(payload)
    signature = b64url(key.sign(f"{protected}.{body}".encode("ascii")))
    return json.dumps({"protected": protected, "payload": body, "signature": signature, **outer}).encode()


def reason_of(data: bytes) -> str:
    """Why `data` does not verify with the site key."""
    with pytest.raises(jws.EnvelopeInvalid) as caught:
        jws.verify_envelope(jws.open_envelope(data), KEY.public_key())
    return caught.value.reason


def test_round_trip_gives_back_the_exact_payload_bytes() -> None:
    envelope = jws.sign_envelope(PAYLOAD, KEY, KID, jws.TYP_ALERT)
    opened = jws.open_envelope(envelope)
    assert (opened.kid, opened.typ, opened.payload) == (KID, jws.TYP_ALERT, PAYLOAD)
    header = base64.urlsafe_b64decode(opened.serialized["protected"] + "==")
    assert (
        header == json.dumps({"alg": "Ed25519", "kid": KID, "typ": "edge-alert+json"}, separators=(",", ":")).encode()
    )
    assert jws.verify_envelope(opened, KEY.public_key()) == PAYLOAD
    assert jws.sign_envelope(PAYLOAD, KEY, KID, jws.TYP_ALERT) == envelope, "Ed25519 and the header are deterministic"


def test_a_hand_built_rfc7515_envelope_verifies() -> None:
    """The signing input is RFC 7515's, so an envelope any JOSE implementation makes is accepted."""
    data = handmade({"alg": "Ed25519", "kid": KID, "typ": jws.TYP_STATUS})
    opened = jws.open_envelope(data)
    assert opened.typ == jws.TYP_STATUS and jws.verify_envelope(opened, KEY.public_key()) == PAYLOAD


def test_another_key_does_not_verify_and_the_error_names_the_kid() -> None:
    opened = jws.open_envelope(jws.sign_envelope(PAYLOAD, OTHER, "site-b", jws.TYP_ALERT))
    with pytest.raises(jws.EnvelopeInvalid, match=r"signature does not verify \(kid site-b\)") as caught:
        jws.verify_envelope(opened, KEY.public_key())
    assert (caught.value.reason, caught.value.kid) == ("bad_signature", "site-b")


def _swap(field: str, value: str) -> Callable[[dict[str, str]], None]:
    return lambda envelope: envelope.update({field: value})


@pytest.mark.parametrize(
    "tamper",
    [
        _swap("payload", b64url(PAYLOAD.replace(b"a-1", b"a-2"))),
        _swap("payload", b64url(PAYLOAD + b" ")),
        # The same key signed an alert: it must not pass as a status by editing typ.
        _swap("protected", b64url(json.dumps({"alg": "Ed25519", "kid": KID, "typ": jws.TYP_STATUS}).encode())),
        _swap("protected", b64url(json.dumps({"alg": "Ed25519", "kid": "another", "typ": jws.TYP_ALERT}).encode())),
        lambda envelope: envelope.update(signature=envelope["signature"][:-6] + "AAAAAA"),
    ],
    ids=["payload-edited", "payload-extended", "typ-swapped", "kid-swapped", "signature-edited"],
)
def test_tampering_with_any_part_breaks_the_signature(tamper: Callable[[dict[str, str]], None]) -> None:
    envelope = json.loads(jws.sign_envelope(PAYLOAD, KEY, KID, jws.TYP_ALERT))
    tamper(envelope)
    assert reason_of(json.dumps(envelope).encode()) == "bad_signature"


@pytest.mark.parametrize("alg", ["none", "EdDSA", "HS256", "ES256", "RS256", "ed25519", "Ed448"])
def test_only_alg_ed25519_is_accepted(alg: str) -> None:
    data = handmade({"alg": alg, "kid": KID, "typ": jws.TYP_ALERT})
    with pytest.raises(jws.EnvelopeInvalid, match=f"alg '{alg}' is not accepted \\(only Ed25519\\)") as caught:
        jws.open_envelope(data)
    assert (caught.value.reason, caught.value.kid) == ("bad_header", KID)


def test_alg_none_with_an_empty_signature_is_refused() -> None:
    header = b64url(json.dumps({"alg": "none", "kid": KID, "typ": jws.TYP_ALERT}).encode())
    data = json.dumps({"protected": header, "payload": b64url(PAYLOAD), "signature": ""}).encode()
    with pytest.raises(jws.EnvelopeInvalid, match="alg 'none' is not accepted"):
        jws.open_envelope(data)


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_an_eddsa_envelope_does_not_verify_even_past_the_header_check() -> None:
    """`EdDSA` (the polymorphic name RFC 9864 deprecates) with a real signature: the verifier refuses it too."""
    eddsa = joserfc_jws.serialize_json(
        {"protected": {"alg": "EdDSA", "kid": KID, "typ": jws.TYP_ALERT}},
        PAYLOAD,
        OKPKey.import_key(KEY),
        algorithms=["EdDSA"],
    )
    forged = jws.OpenedEnvelope(KID, jws.TYP_ALERT, PAYLOAD, eddsa)
    with pytest.raises(jws.EnvelopeInvalid, match="does not verify"):
        jws.verify_envelope(forged, KEY.public_key())


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"], "exp": 1},
        {"b64": False, "crit": ["b64"]},  # RFC 7797 unencoded payload
        {"jwk": jws.public_jwk(OTHER.public_key())},  # "verify me with the key I bring"
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"cty": "json"},
    ],
    ids=["crit", "b64", "embedded-jwk", "jku", "x5u", "cty"],
)
def test_a_header_with_extra_members_is_refused(extra: dict[str, Any]) -> None:
    data = handmade({"alg": "Ed25519", "kid": KID, "typ": jws.TYP_ALERT, **extra})
    with pytest.raises(jws.EnvelopeInvalid, match="protected header must hold exactly alg, kid and typ") as caught:
        jws.open_envelope(data)
    assert caught.value.reason == "bad_header"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "Ed25519", "kid": KID},
        {"alg": "Ed25519", "kid": "", "typ": jws.TYP_ALERT},
        {"alg": "Ed25519", "kid": 7, "typ": jws.TYP_ALERT},
        {"alg": "Ed25519", "kid": "k" * 201, "typ": jws.TYP_ALERT},
        ["alg", "kid", "typ"],
    ],
    ids=["no-typ", "empty-kid", "numeric-kid", "long-kid", "not-an-object"],
)
def test_a_header_without_short_string_alg_kid_typ_is_refused(header: Any) -> None:
    with pytest.raises(jws.EnvelopeInvalid) as caught:
        jws.open_envelope(handmade(header))
    assert caught.value.reason == "bad_header"


@pytest.mark.parametrize(
    "outer",
    [
        {"header": {"kid": "unprotected"}},  # an unprotected header next to the protected one
        {"signatures": []},  # the general serialization's member
    ],
)
def test_only_the_three_flattened_members_are_accepted(outer: dict[str, Any]) -> None:
    with pytest.raises(jws.EnvelopeInvalid, match="not a flattened JWS") as caught:
        jws.open_envelope(handmade({"alg": "Ed25519", "kid": KID, "typ": jws.TYP_ALERT}, **outer))
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not_json"),
        (b"not json", "not_json"),
        (b"\xff\xfe{}", "not_json"),
        (b'{"protected": NaN}', "not_json"),
        (b"[]", "malformed"),
        (b'{"alert": {}, "signature": {"alg": "EdDSA"}}', "malformed"),  # a schema v1 envelope
        (b'{"protected": 1, "payload": "", "signature": ""}', "malformed"),
    ],
    ids=["empty", "text", "not-utf8", "nan", "array", "v1-envelope", "non-string-member"],
)
def test_what_is_not_a_json_envelope_gets_a_specific_reason(data: bytes, reason: str) -> None:
    with pytest.raises(jws.EnvelopeInvalid) as caught:
        jws.open_envelope(data)
    assert caught.value.reason == reason


def test_a_header_that_is_not_utf8_is_malformed() -> None:
    data = json.dumps({"protected": b64url(b'{"alg":"\xff"}'), "payload": b64url(PAYLOAD), "signature": ""})
    with pytest.raises(jws.EnvelopeInvalid, match="bad base64url or header") as caught:
        jws.open_envelope(data.encode())
    assert caught.value.reason == "malformed"


def test_a_payload_that_is_not_utf8_verifies_as_bytes_but_does_not_load() -> None:
    """The signature covers bytes; reading them as JSON is the caller's bounded step."""
    raw = b'{"headline":"\xe9t\xe9"}'  # Latin-1, not UTF-8
    payload = jws.verify_envelope(jws.open_envelope(jws.sign_envelope(raw, KEY, KID, jws.TYP_ALERT)), KEY.public_key())
    with pytest.raises(jws.EnvelopeInvalid, match="not UTF-8 JSON") as caught:
        jws.load_json_bounded(payload)
    assert caught.value.reason == "not_json"


@pytest.mark.parametrize("member", ["protected", "payload", "signature"])
@pytest.mark.parametrize("spoil", ["padding", "plus-slash", "space"])
def test_base64url_must_be_unpadded_and_url_safe(member: str, spoil: str) -> None:
    envelope = json.loads(jws.sign_envelope(PAYLOAD, KEY, KID, jws.TYP_ALERT))
    value = envelope[member]
    if spoil == "padding":
        value = base64.urlsafe_b64encode(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))).decode()
        if "=" not in value:
            value += "=="  # already a multiple of 4: padding where none belongs
    elif spoil == "plus-slash":
        value = value.replace("-", "+").replace("_", "/")
        if "+" not in value and "/" not in value:
            value = "+/" + value[2:]
    else:
        value = value[:4] + " " + value[4:]
    envelope[member] = value
    with pytest.raises(jws.EnvelopeInvalid, match="not unpadded base64url") as caught:
        jws.open_envelope(json.dumps(envelope).encode())
    assert caught.value.reason == "malformed"


def test_an_oversize_message_is_refused_before_parsing() -> None:
    big = jws.sign_envelope(b'{"pad":"' + b"x" * jws.MAX_ENVELOPE_BYTES + b'"}', KEY, KID, jws.TYP_ALERT)
    with pytest.raises(jws.EnvelopeInvalid, match=f"exceeds the limit of {jws.MAX_ENVELOPE_BYTES}") as caught:
        jws.open_envelope(big)
    assert caught.value.reason == "too_large"
    small = jws.sign_envelope(PAYLOAD, KEY, KID, jws.TYP_ALERT)
    assert jws.open_envelope(small, max_bytes=len(small)).payload == PAYLOAD
    with pytest.raises(jws.EnvelopeInvalid, match=f"exceeds the limit of {len(small) - 1}"):
        jws.open_envelope(small, max_bytes=len(small) - 1)


def test_deep_nesting_is_refused_without_recursing() -> None:
    bomb = b"[" * 100_000 + b"]" * 100_000
    for parse in (jws.open_envelope, jws.load_json_bounded):
        with pytest.raises(jws.EnvelopeInvalid, match="nested deeper than") as caught:
            parse(bomb)
        assert caught.value.reason == "too_deep"
    # The envelope itself is flat: an object inside a member is already too deep for it.
    with pytest.raises(jws.EnvelopeInvalid, match="nested deeper than 2 levels"):
        jws.open_envelope(b'{"protected": {"a": [1]}, "payload": "", "signature": ""}')


def test_payload_depth_is_bounded_at_32_and_brackets_inside_strings_do_not_count() -> None:
    assert jws.load_json_bounded(b"[" * 32 + b"]" * 32) is not None
    with pytest.raises(jws.EnvelopeInvalid, match="nested deeper than 32 levels"):
        jws.load_json_bounded(b"[" * 33 + b"]" * 33)
    assert jws.load_json_bounded(b'{"headline": "[[[[\\"{{{{' + b"[" * 100 + b'"}') == {
        "headline": '[[[["{{{{' + "[" * 100
    }


def test_key_id_is_the_rfc7638_thumbprint() -> None:
    """RFC 8037 appendix A.3: the Ed25519 key with this x has thumbprint kPrK_qmx...S4k."""
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    public = jws.public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": x})
    assert jws.key_id_for(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":")).encode()
    assert jws.key_id_for(public) == b64url(hashlib.sha256(members).digest())


def test_public_jwk_round_trips_and_a_jwk_set_holds_them() -> None:
    jwk = jws.public_jwk(KEY.public_key())
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": KID, "alg": "Ed25519", "use": "sig"}
    assert jws.public_key_from_jwk(jwk).public_bytes_raw() == KEY.public_key().public_bytes_raw()
    assert jws.public_jwk(KEY.public_key(), "named")["kid"] == "named"
    assert jws.jwk_set([jwk, jws.public_jwk(OTHER.public_key())])["keys"][0] == jwk


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "not an Ed25519 JWK"),
        ({"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}, "not an Ed25519 JWK"),
        ({"kty": "OKP", "crv": "Ed25519"}, "not an Ed25519 JWK"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, "x must be 32 bytes"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="}, "base64url"),
        (
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "secret"},
            "holds a private key",
        ),
    ],
    ids=["ec", "x25519", "no-x", "short-x", "padded-x", "private"],
)
def test_a_jwk_that_is_not_an_ed25519_public_key_is_refused(jwk: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jws.public_key_from_jwk(jwk)
