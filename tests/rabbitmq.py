"""A throwaway RabbitMQ cluster with its MQTT plugin, for the tests that a clustered broker keeps alerts.

`RabbitCluster` starts Debian's `rabbitmq-server` (3.10 here; `make
system-deps` installs it) as several nodes on loopback, each in its own
folder under one temporary directory: its own node name
(`edge-<letter>@localhost`), AMQP port (`RABBITMQ_NODE_PORT`), Erlang
distribution port (`RABBITMQ_DIST_PORT`), MQTT listener
(`mqtt.listeners.tcp.default`), database and logs (`RABBITMQ_MNESIA_BASE`,
`RABBITMQ_LOG_BASE`). The nodes share one Erlang cookie (`HOME` points at the
directory holding it) and one port mapper of their own (`epmd` on
`ERL_EPMD_PORT`, started and ended here), so nothing reaches a RabbitMQ or an
`epmd` already on the machine. Each node runs in a process group of its own
(the script `rabbitmq-server` is not the Erlang VM it starts), so stopping
a node kills every process it has. The first node
starts alone; the others start beside it and join it with `rabbitmqctl
join_cluster`.

Each node runs the MQTT plugin with durable subscription queues of type
`quorum` (`mqtt.durable_queue_type`): a persistent session's QoS 1 queue is
replicated on a majority of nodes, so it outlives one node. RabbitMQ 3.8 to
3.12 also track MQTT client ids in a cluster-wide Raft group that needs a
majority of nodes up to accept any new MQTT connection: a two-node cluster
that lost one node refuses every client that tries to connect, so a cluster
that must survive a node takes three.

`stop_node(i)` stops one node for good (`rabbitmqctl stop`), as a node
failing would. Startup is slow (about 10-20 s a node, in parallel here), so
the tests share one cluster per session (the `rabbit_cluster` fixture in
tests/agency/conftest.py), which skips with the reason when RabbitMQ is not
installed or will not start.
"""

from __future__ import annotations

__all__ = ["RabbitCluster", "RabbitNode", "RabbitUnavailable", "find_rabbitmq"]

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.brokers import free_port

_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT_S = 90.0


class RabbitUnavailable(RuntimeError):
    """RabbitMQ is not installed here, or its nodes cannot be started or clustered; says which and why."""


def find_rabbitmq() -> Path:
    """The folder of `rabbitmq-server` and `rabbitmqctl` (Debian's, which runs as any user, else PATH).

    Raises:
        RabbitUnavailable: neither has them.
    """
    if (_BIN / "rabbitmq-server").is_file() and (_BIN / "rabbitmqctl").is_file():
        return _BIN
    server = shutil.which("rabbitmq-server")
    if server is not None and shutil.which("rabbitmqctl") is not None:
        return Path(server).resolve().parent
    raise RabbitUnavailable("RabbitMQ is not installed: no rabbitmq-server (`make system-deps` installs Debian's)")


@dataclass(frozen=True, slots=True)
class RabbitNode:
    """One node: its name, MQTT port on 127.0.0.1 and folder."""

    name: str
    mqtt_port: int
    amqp_port: int
    dist_port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"


class RabbitCluster:
    """Several RabbitMQ nodes joined into one cluster (see the module docstring). Use as a context manager."""

    def __init__(self, size: int = 3) -> None:
        self._bin = find_rabbitmq()
        self.root = Path(tempfile.mkdtemp(prefix="edge-rabbit-"))
        self._epmd_port = free_port()
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex())
        cookie.chmod(0o400)
        self.nodes = [self._node(chr(ord("a") + i)) for i in range(size)]
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._epmd: subprocess.Popen[bytes] | None = None

    def _node(self, letter: str) -> RabbitNode:
        folder = self.root / letter
        (folder / "log").mkdir(parents=True)
        node = RabbitNode(f"edge-{letter}@localhost", free_port(), free_port(), free_port(), folder)
        (folder / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}",
                    f"mqtt.listeners.tcp.default = 127.0.0.1:{node.mqtt_port}",
                    "mqtt.allow_anonymous = true",
                    "mqtt.durable_queue_type = quorum",
                    "loopback_users = none",
                    "log.console = false",
                    "log.file.level = info",
                ]
            )
            + "\n"
        )
        (folder / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        return node

    def _env(self, node: RabbitNode) -> dict[str, str]:
        return os.environ | {
            "HOME": str(self.root),
            "ERL_EPMD_PORT": str(self._epmd_port),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(node.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.folder / "log"),
            "RABBITMQ_PID_FILE": str(node.folder / "rabbit.pid"),
            "RABBITMQ_CONF_ENV_FILE": str(node.folder / "rabbitmq-env.conf"),  # none: not the machine's
        }

    def ctl(self, node: RabbitNode, *args: str, timeout_s: float = 60.0) -> str:
        """`rabbitmqctl -n <node> args...`; its output.

        Raises:
            RabbitUnavailable: it failed, with what it said.
        """
        try:
            done = subprocess.run(
                [str(self._bin / "rabbitmqctl"), "-n", node.name, *args],
                env=self._env(node),
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RabbitUnavailable(
                f"rabbitmqctl {' '.join(args)} on {node.name}: no answer in {timeout_s:g} s"
            ) from None
        if done.returncode != 0:
            said = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise RabbitUnavailable(f"rabbitmqctl {' '.join(args)} on {node.name} failed: {said}\n{self.log(node)}")
        return done.stdout.decode(errors="replace")

    def __enter__(self) -> RabbitCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start every node (in parallel), join the others to the first, wait for every MQTT listener.

        Raises:
            RabbitUnavailable: a node exited, did not start in time, or could not join.
        """
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        self._epmd = subprocess.Popen(
            [epmd, "-port", str(self._epmd_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for node in self.nodes:
            self._procs[node.name] = subprocess.Popen(
                [str(self._bin / "rabbitmq-server")],
                env=self._env(node),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=node.folder,
                start_new_session=True,
            )
        for node in self.nodes:
            # `wait` (unlike `await_startup`) also waits for the node to appear: it starts with its pid file.
            pid_file = str(node.folder / "rabbit.pid")
            self.ctl(node, "wait", pid_file, "--timeout", str(int(START_TIMEOUT_S)), timeout_s=START_TIMEOUT_S + 10)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app", timeout_s=START_TIMEOUT_S)
        for node in self.nodes:
            self._wait_listening(node)

    def _wait_listening(self, node: RabbitNode) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", node.mqtt_port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    why = f"{node.name} does not listen on MQTT {node.mqtt_port}\n{self.log(node)}"
                    raise RabbitUnavailable(why) from None
                time.sleep(0.1)

    def running_nodes(self) -> list[str]:
        """The names of the nodes running in the cluster, as the first live node sees it."""
        live = next(n for n in self.nodes if self._alive(n))
        out = self.ctl(live, "eval", "rabbit_nodes:all_running().")
        return sorted(name for name in (n.name for n in self.nodes) if name in out)

    def _alive(self, node: RabbitNode) -> bool:
        proc = self._procs.get(node.name)
        return proc is not None and proc.poll() is None

    def stop_node(self, index: int, *, crash: bool = True) -> None:
        """Stop node `index` for good: killed (SIGKILL) as a failing machine goes, or (`crash=False`)
        `rabbitmqctl stop`, as an operator takes it down. The others keep running."""
        node = self.nodes[index]
        proc = self._procs.pop(node.name, None)
        if proc is None:
            return
        if not crash:
            with contextlib.suppress(RabbitUnavailable):  # killed below
                self.ctl(node, "stop", timeout_s=60.0)
        with contextlib.suppress(ProcessLookupError):  # the group has ended already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def log(self, node: RabbitNode) -> str:
        logs = sorted((node.folder / "log").glob("*.log"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs)

    def close(self) -> None:
        """Stop every node, the cluster's own port mapper, and remove the folder."""
        for index in range(len(self.nodes)):
            self.stop_node(index)  # killed: nothing of theirs is kept
        if self._epmd is not None:
            self._epmd.terminate()
            self._epmd.wait()
            self._epmd = None
        shutil.rmtree(self.root, ignore_errors=True)
