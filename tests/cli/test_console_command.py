"""`edge-agent console add-user` and `console ingest` as a user runs them: real files, a real broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.agency.receiving_config import load_receiving_config
from agent.agency.store import StoreReader, UserStore, open_database
from agent.privacy.audit import read_records, verify_log
from tests.agency.receiving_setup import write_receiving_config
from tests.agency.v2_alerts import Site, publish_raw, signed_alert, write_registry
from tests.brokers import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]


def console(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "--log-level", "warning", "console", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    registry = write_registry(tmp_path / "registry.yaml", [Site("depot-north")])
    return write_receiving_config(tmp_path, 1883, registry, status_key=False)


def test_add_user_reads_the_password_file_and_audits_it(tmp_path: Path, config_file: Path) -> None:
    (tmp_path / "pw").write_text("a long enough password\n")
    result = console(
        "add-user", "alice", "--role", "operator", "--password-file", str(tmp_path / "pw"), "--config", str(config_file)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "added operator 'alice'"
    config = load_receiving_config(config_file)
    user = UserStore(open_database(config.database)).check("alice", "a long enough password")
    assert user is not None and user.role == "operator"
    assert verify_log(config.console.audit_log)[1] is None
    assert [r.data.get("kind") for r in read_records(config.console.audit_log)] == ["console_user_added"]
    again = console(
        "add-user", "alice", "--role", "analyst", "--password-file", str(tmp_path / "pw"), "--config", str(config_file)
    )
    assert again.returncode == 1 and again.stderr.strip() == "error: user 'alice' exists already"


def test_add_user_refuses_without_a_terminal_or_file_and_short_passwords(tmp_path: Path, config_file: Path) -> None:
    result = console("add-user", "bob", "--role", "analyst", "--config", str(config_file), stdin="")
    assert result.returncode == 1 and "give --password-file FILE" in result.stderr
    (tmp_path / "short").write_text("short\n")
    short = console(
        "add-user", "bob", "--role", "analyst", "--password-file", str(tmp_path / "short"), "--config", str(config_file)
    )
    assert short.returncode == 1 and "at least 10 characters" in short.stderr


def test_a_bad_config_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "registry.yaml").write_text("sites: []\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipient: rtcc\nregistry: registry.yaml\nconsole:\n  port: 99999\n")
    result = console("ingest", "--config", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {bad}:4: console.port")


@pytest.mark.broker
def test_ingest_alone_stores_what_arrives(tmp_path: Path) -> None:
    site = Site("depot-north")
    registry = write_registry(tmp_path / "registry.yaml", [site])
    with MosquittoBroker(tmp_path / "broker") as broker:
        config_file = write_receiving_config(tmp_path / "rx", broker.port, registry, client_id="cli-ingest")
        # A first short run makes the persistent session; what is published meanwhile waits in it.
        assert console("ingest", "--config", str(config_file), "--timeout", "1").returncode == 0
        publish_raw(broker.port, [(site.topic(), signed_alert(site, n)) for n in (1, 2)])
        result = console("ingest", "--config", str(config_file), "--timeout", "3")
    assert result.returncode == 0, result.stderr
    assert "stored=2 duplicates=0 statuses=2" in result.stderr
    assert StoreReader(open_database(load_receiving_config(config_file).database)).count_alerts() == 2
