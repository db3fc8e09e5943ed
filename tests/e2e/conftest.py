"""A real gateway (grpc.aio server, relay, RabbitMQ) per test module, on SQLite
and on PostgreSQL, with the five principals registered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import bootstrap
from gateway.client import AgencyClient
from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.rpc.background import BackgroundGateway
from gateway.service.provision import ensure_principals


@dataclass
class Running:
    background: BackgroundGateway
    keys: dict[str, Ed25519PrivateKey]

    @property
    def target(self) -> str:
        return self.background.target

    @property
    def settings(self) -> Settings:
        return self.background.settings

    def client(self, agency: str, key: Ed25519PrivateKey | None = None) -> AgencyClient:
        """A client of ``agency`` that checks the gateway's signature of every delivery."""
        return AgencyClient.connect(
            self.target,
            agency=agency,
            key=key or self.keys[agency],
            gateway_id=self.settings.gateway_id,
            gateway_keys=gateway_keys(self.settings),
        )


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    """Override in a module to change settings of its gateway."""
    return settings


@pytest.fixture(scope="module")
def running(gateway_settings: Settings) -> Iterator[Running]:
    store = bootstrap.open_store(gateway_settings)
    keys = ensure_principals(gateway_settings, store, bootstrap.load_policy(gateway_settings))
    store.engine.dispose()
    with BackgroundGateway(gateway_settings) as background:
        yield Running(background, keys)


@pytest.fixture
def client(running: Running) -> Iterator[Callable[[str], AgencyClient]]:
    opened: list[AgencyClient] = []

    def make(agency: str) -> AgencyClient:
        opened.append(running.client(agency))
        return opened[-1]

    yield make
    for c in opened:
        c.close()
