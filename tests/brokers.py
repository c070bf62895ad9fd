"""Real Mosquitto brokers for tests, and the TLS material they need.

`MosquittoBroker` writes a config into a work directory, starts
`/usr/sbin/mosquitto` on free loopback ports and stops it (SIGTERM, so a
persistent broker saves its state); `restart()` keeps the same ports.
Listeners, each optional:

- `port`: anonymous, no TLS;
- `password_port`: user name and password (`users`, hashed with
  `mosquitto_passwd`), with `acl` applied;
- `tls_port`: TLS with a required client certificate whose CN becomes the
  user name (`use_identity_as_username`), with `acl` applied.

`make_pki(dir, clients)` builds a CA, a server certificate for
127.0.0.1/localhost and one client certificate per name with the
`cryptography` package; `make_pki(..., ca_name=...)` with another name gives
an unrelated CA for wrong-certificate tests.
"""

from __future__ import annotations

__all__ = ["MosquittoBroker", "Pki", "free_port", "make_pki"]

import datetime as dt
import getpass
import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Pki:
    """PEM files: `ca`, `server_cert`/`server_key`, and `clients[name] = (cert, key)`."""

    ca: Path
    server_cert: Path
    server_key: Path
    clients: Mapping[str, tuple[Path, Path]]


def _write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return key


def _issue(
    subject_cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    server: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    else:
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, clients: Sequence[str] = (), ca_name: str = "edge-test-ca") -> Pki:
    """Create a CA, a server certificate for 127.0.0.1/localhost and client certificates."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    ca_key = _write_key(directory / f"{ca_name}.key")
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = _issue(ca_name, ca_key, ca_subject, ca_key, ca=True, server=False)
    (directory / f"{ca_name}.crt").write_bytes(ca_cert.public_bytes(pem))
    server_key = _write_key(directory / f"{ca_name}-server.key")
    server_cert = _issue("localhost", server_key, ca_subject, ca_key, ca=False, server=True)
    (directory / f"{ca_name}-server.crt").write_bytes(server_cert.public_bytes(pem))
    issued: dict[str, tuple[Path, Path]] = {}
    for name in clients:
        key_path, cert_path = directory / f"{ca_name}-{name}.key", directory / f"{ca_name}-{name}.crt"
        client_key = _write_key(key_path)
        cert_path.write_bytes(_issue(name, client_key, ca_subject, ca_key, ca=False, server=False).public_bytes(pem))
        issued[name] = (cert_path, key_path)
    return Pki(
        directory / f"{ca_name}.crt", directory / f"{ca_name}-server.crt", directory / f"{ca_name}-server.key", issued
    )


class MosquittoBroker:
    """One Mosquitto process (see the module docstring). Use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        *,
        anonymous: bool = True,
        users: Mapping[str, str] | None = None,
        tls: Pki | None = None,
        acl: str | None = None,
        persistent: bool = False,
        extra_conf: str = "",
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port() if anonymous else None
        self.password_port = free_port() if users is not None else None
        self.tls_port = free_port() if tls is not None else None
        self._users = users
        self._tls = tls
        self._acl = acl
        self._persistent = persistent
        self._extra = extra_conf
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_file = workdir / "mosquitto.log"
        self.conf_file = workdir / "mosquitto.conf"
        self._write_config()

    def _write_config(self) -> None:
        # Run as the current user: started as root, Mosquitto would switch to `mosquitto`, which
        # cannot write the log or the persistence file into a private temporary directory.
        lines = [
            f"user {getpass.getuser()}",
            "per_listener_settings true",
            f"log_dest file {self.log_file}",
            "log_type all",
            "allow_zero_length_clientid true",
            "set_tcp_nodelay true",  # as the shipped configs
        ]
        if self._persistent:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        acl_line = []
        if self._acl is not None:
            (self.workdir / "acl").write_text(self._acl)
            acl_line = [f"acl_file {self.workdir / 'acl'}"]
        if self.port is not None:
            lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        if self.password_port is not None and self._users is not None:
            pw_file = self.workdir / "passwords"
            pw_file.write_text("".join(f"{u}:{p}\n" for u, p in self._users.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(pw_file)], check=True, capture_output=True)
            lines += [
                f"listener {self.password_port} 127.0.0.1",
                "allow_anonymous false",
                f"password_file {pw_file}",
                *acl_line,
            ]
        if self.tls_port is not None and self._tls is not None:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self._tls.ca}",
                f"certfile {self._tls.server_cert}",
                f"keyfile {self._tls.server_key}",
                "require_certificate true",
                "use_identity_as_username true",
                "allow_anonymous false",
                *acl_line,
            ]
        self.conf_file.write_text("\n".join(lines) + "\n" + self._extra + "\n")

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout_s: float = 10.0) -> None:
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        ports = [p for p in (self.port, self.password_port, self.tls_port) if p is not None]
        deadline = time.monotonic() + timeout_s
        for port in ports:
            while True:
                if self._proc.poll() is not None:
                    err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                    raise RuntimeError(f"mosquitto exited: {err}\n{self.log()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"mosquitto did not listen on {port}\n{self.log()}") from None
                    time.sleep(0.02)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
