"""Running the console: `serve(config)` serves the app with uvicorn over the receiving store.

Host and port come from `config.console`; with `tls_cert_file` and
`tls_key_file` set, uvicorn serves HTTPS itself (the config refuses a host
beyond loopback without TLS unless `allow_plain_http` says a TLS proxy is in
front). Without an `engine` the store is opened (and migrated) here and
closed on the way out; `edge-agent console --with-ingest` passes the ingest
service's own.
"""

from __future__ import annotations

__all__ = ["serve"]

import logging

import uvicorn
from sqlalchemy import Engine

from agent.agency.console.app import create_app
from agent.agency.receiving_config import ReceivingConfig
from agent.agency.store import open_database
from agent.logs import log_event

_log = logging.getLogger("agent.agency.console")


def serve(config: ReceivingConfig, *, engine: Engine | None = None) -> int:
    """Serve the console until interrupted; the exit status (0).

    Args:
        config: the receiving config.
        engine: the receiving store; default: open `config.database`.

    Raises:
        AgentError: the store, registry, status key or session secret cannot be opened.
    """
    own = engine is None
    store = open_database(config.database) if engine is None else engine
    try:
        app = create_app(config, engine=store)
        section = config.console
        scheme = "https" if section.tls else "http"
        log_event(_log, "console_listening", url=f"{scheme}://{section.host}:{section.port}/")
        uvicorn.run(
            app,
            host=section.host,
            port=section.port,
            ssl_certfile=str(section.tls_cert_file) if section.tls_cert_file is not None else None,
            ssl_keyfile=str(section.tls_key_file) if section.tls_key_file is not None else None,
            server_header=False,
            # Open event streams must not hold a shutdown for long.
            timeout_graceful_shutdown=5,
            # uvicorn's own lines follow the command's --log-level; requests are not logged
            # (the console's audit log records what users did).
            log_level=logging.getLevelName(logging.getLogger("agent").getEffectiveLevel()).lower(),
            access_log=False,
        )
    finally:
        if own:
            store.dispose()
    return 0
