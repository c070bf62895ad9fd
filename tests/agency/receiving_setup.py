"""A recipient's receiving config on disk and its ingest service running in a thread, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
) -> Path:
    """`receiving.yaml` in `folder`: the broker on loopback, the registry, a new status key (when asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"recipient: {recipient}",
        f"registry: {registry_file}",
        f"database: sqlite:///{folder / 'receiving.sqlite'}",
        "broker:",
        f"  url: mqtt://127.0.0.1:{broker_port}",
        f"  client_id: {client_id}",
        "  session_expiry_s: 300",
    ]
    if status_key:
        generate_key_file(folder / "status.pem")
        lines.append(f"status_key: {folder / 'status.pem'}")
    path = folder / "receiving.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@contextmanager
def running_ingest(config: ReceivingConfig | Path, timeout_s: float = 15.0) -> Iterator[IngestService]:
    """An ingest service subscribed and running on its own thread until the block ends."""
    service = IngestService(config if isinstance(config, ReceivingConfig) else load_receiving_config(config))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            service.run()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            errors.append(err)
            service.ready.set()

    thread = threading.Thread(target=run, name="test-ingest", daemon=True)
    thread.start()
    service.ready.wait(timeout_s)
    if errors:
        raise errors[0]
    try:
        yield service
    finally:
        service.stop()
        thread.join(timeout_s)
