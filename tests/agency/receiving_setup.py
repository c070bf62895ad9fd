"""A recipient's receiving config on disk and its ingest service running in a thread, for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

from agent.agency.ingest import IngestService
from agent.agency.receiving_config import ReceivingConfig, load_receiving_config
from agent.delivery.signing import generate_key_file
from tests.agency.v2_alerts import RECIPIENT


def write_receiving_config(
    folder: Path,
    broker_port: int,
    registry_file: Path,
    *,
    recipient: str = RECIPIENT,
    client_id: str = "police-rtcc-ingest",
    status_key: bool = True,
    extra: str = "",
    database: str | None = None,
    shared_group: str | None = None,
) -> Path:
    """`receiving.yaml` in `folder`: the broker on loopback, the registry, a new status key (when asked), the
    store at `database` (default: receiving.sqlite in `folder`), replicas sharing alerts in `shared_group`."""
    folder.mkdir(parents=True, exist_ok=True)
    database = database or f"sqlite:///{folder / 'receiving.sqlite'}"
    lines = [
        f"recipient: {recipient}",
        f"registry: {registry_file}",
        f"database: {json.dumps(database)}",
        "broker:",
        f"  url: mqtt://127.0.0.1:{broker_port}",
        f"  client_id: {client_id}",
        "  session_expiry_s: 300",
    ]
    if shared_group is not None:
        lines.append(f"  shared_group: {shared_group}")
    if status_key:
        generate_key_file(folder / "status.pem")
        lines.append(f"status_key: {folder / 'status.pem'}")
    path = folder / "receiving.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def running_ingest(config: ReceivingConfig | Path) -> IngestService:
    """An ingest service to run on its own thread for a `with` block (subscribed when the block starts)."""
    return IngestService(config if isinstance(config, ReceivingConfig) else load_receiving_config(config))
