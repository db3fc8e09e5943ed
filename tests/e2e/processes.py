"""`silian serve` as a real process the tests can start, kill and restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_health(target: str, want: int, timeout: float) -> None:
    """Block until the gateway's health (service "") reports ``want``."""
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        for response in health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), timeout=timeout
        ):
            if response.status == want:
                return


class GatewayProcess:
    """One `silian serve` process on a fixed port; restartable on the same data."""

    def __init__(self, settings: Settings, **env: str) -> None:
        self.settings = settings
        self.target = f"127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "SILIAN_DATABASE_URL": settings.database_url,
            "SILIAN_BROKER_PREFIX": settings.broker_prefix,
            "SILIAN_AMQP_URL": settings.amqp_url,
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - read by log() after the process

    def start(self, timeout: float = 60) -> None:
        silian = Path(sys.executable).with_name("silian")
        self.process = subprocess.Popen(
            [
                str(silian),
                "--data-dir",
                str(self.settings.data_dir),
                "serve",
                "--listen",
                self.target,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        wait_health(self.target, health_pb2.HealthCheckResponse.SERVING, timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")
