"""A throwaway PostgreSQL for tests and benchmarks: its own cluster in a temporary folder, on a Unix socket there.

`PostgresServer` runs Debian's `postgresql` binaries (`make system-deps`
installs the package; `initdb`, `postgres` live under
`/usr/lib/postgresql/<version>/bin`): `initdb` into a fresh folder under
/tmp, then `postgres` listening on no TCP port at all, only on a socket in
that folder, with trust authentication for its one superuser `edge`. As root
(where `initdb` refuses to run) both run as the `postgres` user the package
creates, switched to by `subprocess` itself (no `su` in between, so the
process this object holds is the server: `kill()` really kills it).
`restart()` keeps the data and the socket, as a database restart in service
would. `durable=False` (the tests' default) turns fsync off: the tests check
behaviour, not what survives a power cut; a benchmark passes `durable=True`.

The `postgres` fixture (tests/conftest.py) is the test session's one server,
or skips with the reason when PostgreSQL is not installed or will not start;
`postgres_url` is a fresh database on it for one test.
"""

from __future__ import annotations

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bin_dir"]

import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

SUPERUSER = "edge"
_numbers = itertools.count(1)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed here, or its server cannot be started; says which and why."""


def find_bin_dir() -> Path:
    """The folder of `initdb` and `postgres`: the newest /usr/lib/postgresql/<version>/bin, else PATH.

    Raises:
        PostgresUnavailable: neither has them.
    """
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("postgres") is not None:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed: no initdb under /usr/lib/postgresql/*/bin or on PATH "
        "(`make system-deps` installs Debian's postgresql)"
    )


def _run_as() -> dict[str, Any]:
    """Popen keywords that run the server as `postgres` when this process is root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no `postgres` user to run initdb as") from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


class PostgresServer:
    """One PostgreSQL cluster (see the module docstring). Use as a context manager."""

    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        self.bin_dir = find_bin_dir()
        self._as = _run_as()
        self.folder = Path(tempfile.mkdtemp(prefix="edge-pg-", dir="/tmp"))  # short: a socket path has 107 bytes
        self.data_dir = self.folder / "data"
        self.log_file = self.folder / "postgres.log"
        self.settings = {"listen_addresses": "", "unix_socket_directories": str(self.folder), "max_connections": "300"}
        if not durable:
            self.settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        self.settings |= settings or {}
        self._proc: subprocess.Popen[bytes] | None = None
        if self._as:
            os.chown(self.folder, self._as["user"], self._as["group"])
        self._initdb()

    def _initdb(self) -> None:
        command = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust"]
        done = subprocess.run(
            [*command, "--no-sync", "--encoding=UTF8", "--locale=C"], capture_output=True, text=True, **self._as
        )
        if done.returncode != 0:
            self.remove()
            raise PostgresUnavailable(f"initdb failed ({done.returncode}): {done.stderr.strip()[-500:]}")

    @property
    def socket_dir(self) -> Path:
        return self.folder

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one database of this server (psycopg 3, over the Unix socket)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.folder}"

    def start(self, timeout_s: float = 30.0) -> None:
        options = [item for key, value in self.settings.items() for item in ("-c", f"{key}={value}")]
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as,
            )
        deadline = time.monotonic() + timeout_s
        while not self._accepts():
            if self._proc.poll() is not None:
                raise PostgresUnavailable(f"postgres exited ({self._proc.returncode}):\n{self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"postgres did not accept connections within {timeout_s:g} s")
            time.sleep(0.05)

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(host=str(self.folder), user=SUPERUSER, dbname="postgres", connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self, *, fast: bool = True) -> None:
        """Shut the server down (fast: SIGINT, open transactions rolled back, connections closed)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT if fast else signal.SIGTERM)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database (named `name`, else a fresh name); its URL."""
        import psycopg

        name = name or f"db{next(_numbers)}_{os.getpid()}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"database name {name!r}: lower-case letters, digits and _")
        with psycopg.connect(host=str(self.folder), user=SUPERUSER, dbname="postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")  # checked above: a plain identifier
        return self.url(name)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.remove()
