"""``silian serve`` as its own process, which tests and benchmarks start, kill
and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.testing.health import GatewayExited, free_port, wait_health
from gateway.testing.resources import agency_client


class GatewayProcess:
    """One ``silian serve`` process on a port of its own, restartable on the same data.

    It runs with the data directory, database, broker and broker prefix of
    ``settings``, in this process's environment without its ``SILIAN_*``
    variables, plus ``env`` (more ``SILIAN_*`` settings); only what the
    environment and the data directory say reaches it. It has a session of its
    own, so a Ctrl-C reaches only the caller, which stops it. ``args`` go after
    ``serve --listen <target>`` (e.g. ``--workers 2``). Its output
    (stdout and stderr) is appended to ``log_path``, by default ``serve.log``
    in the data directory, across restarts. ``credentials`` are what a client
    needs to reach it under TLS (``SILIAN_TLS_CERT`` … in ``env``).
    """

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.args = list(args)
        self.target = f"127.0.0.1:{free_port()}"
        self.log_path = log_path or settings.data_dir / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SILIAN_")} | {
            "SILIAN_DATABASE_URL": settings.database_url,
            "SILIAN_AMQP_URL": settings.amqp_url,
            "SILIAN_BROKER_PREFIX": settings.broker_prefix,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the gateway was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Start the process; returns once its health says SERVING. Raises
        ``GatewayExited`` if it ends first and ``TimeoutError`` if it is not
        serving within ``timeout`` seconds, each with the end of its log."""
        silian = Path(sys.executable).with_name("silian")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(silian),
                    "--data-dir",
                    str(self.settings.data_dir),
                    "serve",
                    "--listen",
                    self.target,
                    *self.args,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_health(self.target, timeout, running=self.running, credentials=self.credentials)
        except GatewayExited as exited:
            code = self.process.returncode
            raise GatewayExited(f"the gateway exited ({code}):\n{self.log_tail()}") from exited
        except TimeoutError as late:
            raise TimeoutError(f"{late}:\n{self.log_tail()}") from late

    def client(self, agency: str, key: Ed25519PrivateKey) -> AgencyClient:
        """A client of ``agency`` that checks the gateway's signature of every delivery."""
        return agency_client(self.target, self.settings, agency, key, self.credentials)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds;
        returns its exit code (None if it was never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        """Everything it wrote, over every start."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
