"""The receiving side of `make demo`: a trust registry, a recipient status key, a receiving config, a demo user
and the web console as its own process.

All of it goes in the demo's working folder and is what an agency would set
up by hand: `registry.yaml` names the demo site with its public key (a JWK),
`<recipient>-status.pem` is the recipient's status key (its public JWK is
given to the agent as the recipient's `feedback_keys`), `receiving.yaml` is
the receiving config the ingest service and `edge-agent console` read, and
the user `demo` (analyst) gets a fresh password each run.
"""

from __future__ import annotations

__all__ = [
    "ConsoleProcess",
    "add_demo_user",
    "demo_registry",
    "feedback_keys_override",
    "free_port",
    "recipient_status_key",
    "write_receiving_config",
]

import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import yaml
from sqlalchemy import Engine

from agent.agency.status_sender import StatusSigner
from agent.agency.store import UserStore
from agent.config import SiteConfig
from agent.delivery.jws import key_id_for, public_jwk
from agent.delivery.signing import generate_key_file, load_or_create_signing_key, write_public_key_files

DEMO_USER = "demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def recipient_status_key(workdir: Path, recipient: str) -> tuple[StatusSigner, Path]:
    """A new status-signing key for `recipient` in `workdir` and its public JWK file beside it.

    What `edge-agent keys generate` and `keys export-public` write.
    """
    key = generate_key_file(workdir / f"{recipient}-status.pem")
    files = write_public_key_files(key, workdir, f"{recipient}-status")
    return StatusSigner(key, recipient, files.kid), files.jwk


def feedback_keys_override(config_path: str | Path, recipient: str, jwk: Path) -> str:
    """The `--set` naming `jwk` as the first recipient's `feedback_keys`.

    A config without a recipients list has the one default recipient
    (`recipient`), which an index cannot reach: the list is given whole then.
    """
    data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    if (data.get("policies") or {}).get("recipients"):
        return f"policies.recipients.0.feedback_keys={jwk}"
    return "policies.recipients=" + json.dumps([{"name": recipient, "feedback_keys": str(jwk)}], separators=(",", ":"))


def demo_registry(config: SiteConfig, workdir: Path) -> Path:
    """A trust registry file naming the demo site, its topic prefix and its public key as a JWK.

    The key is created here when the demo runs for the first time (the agent
    then loads the same file), so the registry can name it before the agent starts.
    """
    public = load_or_create_signing_key(config.signing.key_file).public_key()
    jwk = public_jwk(public, config.signing.key_id or key_id_for(public))
    path = workdir / "registry.yaml"
    path.write_text(
        "sites:\n"
        f"  - site_id: {config.site.id}\n"
        f"    name: {json.dumps(config.site.name)}\n"
        f"    topic_prefix: {config.mqtt.topic_prefix}\n"
        "    keys:\n"
        f"      - jwk: {json.dumps(jwk)}\n",
        encoding="utf-8",
    )
    return path


def write_receiving_config(
    workdir: Path, recipient: str, signer_key: Path, broker_port: int, console_port: int
) -> Path:
    """`receiving.yaml` for the demo's recipient: the local broker, the registry and status key beside it."""
    path = workdir / "receiving.yaml"
    path.write_text(
        f"recipient: {recipient}\n"
        "registry: registry.yaml\n"
        f"status_key: {signer_key.name}\n"
        "database: sqlite:///receiving.sqlite\n"
        "broker:\n"
        f"  url: mqtt://127.0.0.1:{broker_port}\n"
        f"  client_id: {recipient}-demo-ingest\n"
        "console:\n"
        "  host: 127.0.0.1\n"
        f"  port: {console_port}\n",
        encoding="utf-8",
    )
    return path


def add_demo_user(engine: Engine) -> tuple[str, str]:
    """The demo analyst's name and a new password (the console's own store)."""
    password = secrets.token_urlsafe(12)
    UserStore(engine).add(DEMO_USER, "analyst", password)
    return DEMO_USER, password


class ConsoleProcess:
    """`edge-agent console --config FILE` as a child process, up once its port answers."""

    def __init__(self, config_path: Path, port: int) -> None:
        self.config_path = config_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ConsoleProcess:
        cmd = [sys.executable, "-m", "agent", "--log-level", "warning", "console", "--config", str(self.config_path)]
        self._proc = subprocess.Popen(cmd, start_new_session=True)  # stopped by the demo, after the agent
        if not wait_for_port(self.port, 30.0) or self._proc.poll() is not None:
            self._stop()
            raise SystemExit(f"demo: the console did not start on port {self.port}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
