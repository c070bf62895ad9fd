"""The trust registry file: accepted as documented, refused with file, line and field for each problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.agency.trust_registry_file import load_registry
from agent.delivery.jws import jwk_set
from agent.errors import ConfigError
from tests.agency.v2_alerts import Site


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_registry(path)
    return [str(i) for i in caught.value.issues]


def test_the_documented_format_loads(tmp_path: Path) -> None:
    north, south, south_next = Site("depot-north"), Site("depot-south"), Site("depot-south")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "south.jwks.json").write_text(json.dumps(jwk_set([south.jwk(), south_next.jwk()])))
    (tmp_path / "keys" / "north.jwk").write_text(json.dumps(north.jwk()))
    path = tmp_path / "registry.yaml"
    path.write_text(
        "sites:\n"
        "  - site_id: depot-north\n"
        "    name: Depot North\n"
        "    topic_prefix: edge/eu\n"
        "    keys:\n"
        "      - jwk_file: keys/north.jwk\n"
        "        not_before: 2026-01-01T00:00:00Z\n"
        "        not_after: 2027-01-01T00:00:00Z\n"
        "    revoked: [some-old-kid]\n"
        "  - site_id: depot-south\n"
        "    keys:\n"
        "      - jwk_file: keys/south.jwks.json\n"
    )
    registry = load_registry(path)
    assert registry.sites["depot-north"].topic_root == "edge/eu/depot-north/"
    assert [k.kid for k in registry.sites["depot-south"].keys] == [south.kid, south_next.kid]
    assert registry.alert_filters() == ["edge/eu/depot-north/+/alerts/#", "edge/depot-south/+/alerts/#"]
    assert registry.site_of_topic("edge/depot-south/cam/alerts/yard") is registry.sites["depot-south"]


def test_each_problem_is_named_with_file_line_and_field(tmp_path: Path) -> None:
    good = json.dumps(Site("x").jwk())
    private = {**Site("y").jwk(), "d": "A" * 43}
    path = tmp_path / "bad.yaml"
    path.write_text(
        "sites:\n"  # 1
        "  - site_id: depot north\n"  # 2
        "    topic_prefix: ed+ge\n"  # 3
        "    keys:\n"  # 4
        f"      - jwk: {good}\n"  # 5
        "        not_before: 2027-01-01T00:00:00Z\n"  # 6
        "        not_after: 2026-01-01T00:00:00Z\n"  # 7
        f"      - jwk: {json.dumps(private)}\n"  # 8
        "      - jwk_file: a.jwk\n"  # 9
        "        jwk: {kty: RSA}\n"  # 10
        "    colour: red\n"  # 11
        "  - site_id: depot-south\n"  # 12
        "    keys: []\n"  # 13
        "  - site_id: depot-west\n"  # 14
        "    keys:\n"  # 15
        "      - jwk: {kty: OKP, crv: Ed25519, x: abc}\n"  # 16
        "        not_after: 2026-01-01\n"  # 17
    )
    problems = _problems(path)
    assert problems == [
        f"{path}:2: sites.0.site_id: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}$'",
        f"{path}:3: sites.0.topic_prefix: 'ed+ge' is not a valid MQTT topic level",
        f"{path}:5: sites.0.keys.0: not_after must be later than not_before",
        f"{path}:8: sites.0.keys.1.jwk: the JWK holds a private key (d); give the public key only",
        f"{path}:10: sites.0.keys.2.jwk: not an Ed25519 JWK (kty OKP, crv Ed25519, x)",
        f"{path}:11: sites.0.colour: unknown key (not part of the config schema)",
        f"{path}:13: sites.1.keys: List should have at least 1 item after validation, not 0",
        f"{path}:16: sites.2.keys.0.jwk: x must be 32 bytes",
        f"{path}:17: sites.2.keys.0.not_after: Input should have timezone info",
    ]


def test_what_spans_entries_is_checked_after_the_schema(tmp_path: Path) -> None:
    north, other = Site("depot-north"), Site("depot-east")
    jwk = json.dumps(north.jwk())
    (tmp_path / "broken.jwk").write_text("{not json")
    path = tmp_path / "r.yaml"
    path.write_text(
        "sites:\n"  # 1
        "  - site_id: depot-north\n"  # 2
        "    keys:\n"  # 3
        f"      - jwk: {jwk}\n"  # 4
        "      - jwk_file: missing.jwk\n"  # 5
        "  - site_id: depot-north\n"  # 6
        "    keys:\n"  # 7
        f"      - jwk: {json.dumps(other.jwk())}\n"  # 8
        "      - jwk_file: broken.jwk\n"  # 9
        "  - site_id: depot-east\n"  # 10
        "    keys:\n"  # 11
        f"      - jwk: {jwk}\n"  # 12
        f"    revoked: [{other.kid}]\n"  # 13
    )
    problems = _problems(path)
    assert (
        problems[0]
        == f"{path}:5: sites.0.keys.1.jwk_file: cannot read {tmp_path / 'missing.jwk'}: No such file or directory"
    )
    assert problems[1] == f"{path}:6: sites.1.site_id: site 'depot-north' is listed twice"
    assert problems[2].startswith(f"{path}:9: sites.1.keys.1.jwk_file: {tmp_path / 'broken.jwk'} is not a JWK file")
    assert (
        problems[3]
        == f"{path}:12: sites.2.keys.0.jwk: key id '{north.kid}' is already registered (to site depot-north)"
    )
    assert (
        problems[4] == f"{path}:13: sites.2.revoked.0: key id '{other.kid}' belongs to site depot-north, not this one"
    )
    assert len(problems) == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ": <root>: file is empty"),
        ("sites: [\n", ":2: <root>: YAML syntax"),
        ("- a\n", ":1: <root>: top level must be a mapping"),
        ("sites: []\n", ":1: sites: List should have at least 1 item"),
    ],
)
def test_unusable_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    [problem] = _problems(path)
    assert problem.startswith(str(path) + expected), problem


def test_a_missing_file(tmp_path: Path) -> None:
    assert _problems(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: <root>: file not found"]
