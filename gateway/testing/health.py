"""Reaching a gateway under test: a port to give it, and waiting for its health."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

#: How often ``wait_health`` asks ``running`` whether the gateway is still there.
RUNNING_CHECK_SECONDS = 1.0


class GatewayExited(RuntimeError):
    """The gateway's process ended while it was being waited for."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now (another process may
    still take it before it is used)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_health(
    target: str,
    timeout: float,
    *,
    want: int = SERVING,
    credentials: grpc.ChannelCredentials | None = None,
    running: Callable[[], bool] | None = None,
) -> None:
    """Block until the gateway at ``target`` reports ``want`` for its whole
    service (health service ""), watching the status rather than polling it.

    A gateway that is not listening yet, or restarts meanwhile, is waited out.
    Raises ``TimeoutError`` after ``timeout`` seconds and, when ``running`` is
    given, ``GatewayExited`` as soon as it returns False (checked every
    ``RUNNING_CHECK_SECONDS``)."""
    deadline = time.monotonic() + timeout
    channel = (
        grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    )
    request = health_pb2.HealthCheckRequest(service="")
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while (remaining := deadline - time.monotonic()) > 0:
            if running is not None and not running():
                raise GatewayExited(f"the gateway at {target} exited")
            watch = min(remaining, RUNNING_CHECK_SECONDS) if running else remaining
            try:
                for response in stub.Watch(request, timeout=watch, wait_for_ready=True):
                    if response.status == want:
                        return
            except grpc.RpcError as err:
                code = err.code()
                if code not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                    raise
    wanted = health_pb2.HealthCheckResponse.ServingStatus.Name(want)
    raise TimeoutError(f"the gateway at {target} did not report {wanted} within {timeout:g} s")
