"""Broker and database servers of a test's own, for tests that stop, kill or
cluster them: the machine's RabbitMQ and PostgreSQL are never touched, so test
runs (and other worktrees) beside this one keep working.

``own_rabbitmq`` starts a RabbitMQ node with its own node name, ports, data
directory and Erlang cookie, ``own_rabbitmq_cluster`` several such nodes
clustered together; ``own_postgres`` an initdb'd PostgreSQL cluster on
its own port and socket directory, running as the ``postgres`` user (the
server refuses root). Each stops only what it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.testing import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
HOST = "localhost"


def _wait_port(port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)  # polling a port that is not ours to signal: no event to wait on
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {seconds:.0f} s")


@dataclass
class RabbitNode:
    """One RabbitMQ node of a test's own."""

    name: str  # rabbit-<id>@localhost
    port: int
    home: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """``rabbitmqctl -n NODE ARGS``; raises with its output on failure."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.name, *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def close_connections(self, named: str) -> int:
        """Close the client connections whose ``connection_name`` contains
        ``named``, as a broker-side failure would; returns how many."""
        listed = self.ctl("list_connections", "pid", "client_properties", "--no-table-headers")
        closed = 0
        for line in listed.splitlines():
            pid, _, properties = line.partition("\t")
            if named in properties:
                self.ctl("close_connection", pid, "closed by a test")
                closed += 1
        return closed

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM, as a crash would (it stays down)."""
        os.kill(int(self.ctl("eval", "os:getpid().").strip().strip('"')), signal.SIGKILL)

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")


@contextmanager
def own_rabbitmq(base: Path, cookie: str | None = None) -> Iterator[RabbitNode]:
    """A RabbitMQ node under ``base`` (guest may connect from localhost)."""
    node_id = uuid.uuid4().hex[:8]
    home = base / f"rabbit-{node_id}"
    home.mkdir(parents=True)
    cookie_file = home / ".erlang.cookie"
    cookie_file.write_text(cookie or uuid.uuid4().hex)
    cookie_file.chmod(0o400)
    (home / "enabled_plugins").write_text("[].\n")
    port, dist = free_port(), free_port()
    name = f"rabbit-{node_id}@{HOST}"
    env = {
        **os.environ,
        "HOME": str(home),
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(home / "node.pid"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
        # A node killed mid-test writes its crash dumps here, not into the checkout
        "ERL_CRASH_DUMP": str(home / "erl_crash.dump"),
    }
    (home / "rabbitmq.conf").write_text("loopback_users = none\n")
    log = (home / "server.out").open("wb")
    server = subprocess.Popen(
        [str(RABBITMQ_BIN / "rabbitmq-server")],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    node = RabbitNode(name, port, home, env)
    try:
        _wait_port(port, 90, f"RabbitMQ node {name}")
        node.ctl("await_startup")
        yield node
    finally:
        try:
            node.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # killed below
        finally:
            # The Erlang VM outlives the rabbitmq-server script if the stop failed
            # (or was interrupted): end the node's whole process group, ours alone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)
            log.close()
            shutil.rmtree(home, ignore_errors=True)


@contextmanager
def own_rabbitmq_cluster(base: Path, size: int = 3) -> Iterator[list[RabbitNode]]:
    """``size`` RabbitMQ nodes of a test's own, clustered: one Erlang cookie of
    their own, each with its own node name, ports and data directory; the others
    join the first. Every node is stopped on exit, whatever the test did."""
    cookie = uuid.uuid4().hex
    with contextlib.ExitStack() as started:
        nodes = [started.enter_context(own_rabbitmq(base, cookie)) for _ in range(size)]
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", nodes[0].name)
            node.start_app()
        yield nodes


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name))
    return versions[-1] / "bin"


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of a test's own."""

    data: Path
    port: int
    socket_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        _as_postgres(str(_postgres_bin() / "pg_ctl"), "-D", str(self.data), "-w", *args)

    def start(self) -> None:
        self._ctl("-l", str(self.data / "server.log"), "start")

    def stop(self, mode: str = "immediate") -> None:
        self._ctl("-m", mode, "stop")


def _as_postgres(*command: str) -> None:
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr or done.stdout}")


@contextmanager
def own_postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL cluster in a directory of its own (owned by the
    ``postgres`` user, trust auth for local TCP)."""
    root = Path(tempfile.mkdtemp(prefix="silian-test-pg-"))
    shutil.chown(root, "postgres", "postgres")
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    shutil.chown(sockets, "postgres", "postgres")
    _as_postgres(str(_postgres_bin() / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    port = free_port()
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{sockets}'\nfsync = off\n"
        )
    server = PostgresServer(data, port, sockets)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # already stopped by the test
            server.stop("fast")
        shutil.rmtree(root, ignore_errors=True)
