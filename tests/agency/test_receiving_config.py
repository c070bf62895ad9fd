"""The receiving config file: the shipped example validates, mistakes name file, line and field, paths resolve."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.agency.receiving_config import load_receiving_config
from agent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_receiving_config(path)
    return [str(i) for i in err.value.issues]


def _write(folder: Path, text: str) -> Path:
    (folder / "registry.yaml").write_text("sites: []\n")
    path = folder / "receiving.yaml"
    path.write_text(text)
    return path


def test_the_shipped_example_is_valid_and_its_paths_resolve_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "receiving.yaml"
    shutil.copy(REPO / "config" / "receiving.example.yaml", path)
    (tmp_path / "registry.yaml").write_text("sites: []\n")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "mqtt-password").write_text("s3cret\n")
    config = load_receiving_config(path)
    assert config.registry == tmp_path / "registry.yaml"
    assert config.database == f"sqlite:///{tmp_path / 'receiving.sqlite'}"
    assert config.broker.ca_file == tmp_path / "keys" / "ca.pem"
    assert config.console.audit_log == tmp_path / "console-audit.jsonl"
    assert config.connection(role="ingest").client_id == "police-rtcc-ingest"
    assert config.connection(role="ingest").password == "s3cret"
    assert config.connection(role="console").session_expiry_s == 0


def test_a_console_beyond_loopback_needs_tls_or_an_explicit_flag(tmp_path: Path) -> None:
    text = "recipient: rtcc\nregistry: registry.yaml\nconsole:\n  host: 0.0.0.0\n"
    [issue] = _issues(_write(tmp_path, text))
    assert issue.startswith(f"{tmp_path / 'receiving.yaml'}:4: console")
    assert "beyond loopback" in issue
    assert load_receiving_config(_write(tmp_path, text + "  allow_plain_http: true\n")).console.host == "0.0.0.0"


def test_mistakes_name_the_line_and_field(tmp_path: Path) -> None:
    text = "recipient: rtcc\nregistry: registry.yaml\nbroker:\n  url: http://x\n  sesion_expiry_s: 5\n"
    issues = _issues(_write(tmp_path, text))
    assert any(i.startswith(f"{tmp_path / 'receiving.yaml'}:4: broker.url") for i in issues)
    assert any(":5: broker.sesion_expiry_s" in i for i in issues)


def test_a_missing_registry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "receiving.yaml"
    path.write_text("recipient: rtcc\nregistry: nowhere.yaml\n")
    [issue] = _issues(path)
    assert issue.startswith(f"{path}:2: registry") and "nowhere.yaml" in issue


def test_several_brokers_are_one_list_of_one_scheme(tmp_path: Path) -> None:
    text = "recipient: rtcc\nregistry: registry.yaml\nbroker:\n  urls: [mqtt://a:1883, mqtt://b]\n"
    options = load_receiving_config(_write(tmp_path, text)).connection(role="ingest")
    assert [str(u) for u in options.urls] == ["mqtt://a:1883", "mqtt://b:1883"]
    mixed = "recipient: rtcc\nregistry: registry.yaml\nbroker:\n  urls: [mqtt://a, mqtts://b]\n"
    [issue] = _issues(_write(tmp_path, mixed))
    assert issue.startswith(f"{tmp_path / 'receiving.yaml'}:4: broker.urls") and "one scheme" in issue
    both = "recipient: rtcc\nregistry: registry.yaml\nbroker:\n  url: mqtt://a\n  urls: [mqtt://b]\n"
    [issue] = _issues(_write(tmp_path, both))
    assert ":4: broker: " in issue and "not both" in issue


def test_shared_subscriptions_need_mqtt_5(tmp_path: Path) -> None:
    text = 'recipient: rtcc\nregistry: registry.yaml\nbroker:\n  protocol: "3.1.1"\n  shared_group: rtcc\n'
    [issue] = _issues(_write(tmp_path, text))
    assert ":4: broker: " in issue and "shared_group needs MQTT 5" in issue
