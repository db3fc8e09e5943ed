"""A whole gateway in a thread of this process (the demo and the e2e tests)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import bootstrap
from gateway.audit.checkpoints import Checkpointer
from gateway.bootstrap import Gateway
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.rpc.server import serve
from gateway.testing.health import wait_health
from gateway.testing.resources import agency_client


class BackgroundGateway:
    """``with BackgroundGateway(settings) as gw:`` serves on ``gw.target`` until exit.

    The listen port is chosen by the system unless the settings name one;
    ``credentials`` are what a client needs to reach it under TLS.
    Entering returns once health says SERVING (database and broker ready).
    ``checkpointer`` is the audit checkpointer the server runs (tests wait on it).
    ``clock`` is the exchange service's (a test may move it).
    """

    def __init__(
        self,
        settings: Settings,
        ready_timeout: float = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.listen.endswith(":7443"):
            settings = replace(settings, listen="127.0.0.1:0")
        self.settings = settings
        self.ready_timeout = ready_timeout
        self.credentials = credentials
        self.gateway: Gateway = bootstrap.build(settings, clock=clock)
        self.checkpointer = Checkpointer.for_settings(self.gateway.store, settings)
        self.target = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="gateway", daemon=True)

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()

            def ready(port: int) -> None:
                host = self.settings.listen.rsplit(":", 1)[0]
                self.target = f"{host}:{port}"
                self._started.set()

            await serve(
                self.gateway,
                on_ready=ready,
                stopping=self._stopping,
                checkpointer=self.checkpointer,
            )

        try:
            asyncio.run(run())
        except BaseException as exc:
            self._error = exc
            self._started.set()

    def __enter__(self) -> BackgroundGateway:
        self._thread.start()
        if not self._started.wait(self.ready_timeout) or self._error:
            raise RuntimeError(f"gateway did not start: {self._error!r}")
        wait_health(self.target, self.ready_timeout, credentials=self.credentials)
        return self

    def client(self, agency: str, key: Ed25519PrivateKey) -> AgencyClient:
        """A client of ``agency`` that checks the gateway's signature of every delivery."""
        return agency_client(self.target, self.settings, agency, key, self.credentials)

    def stop(self) -> None:
        if self._loop and self._stopping and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(60)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
