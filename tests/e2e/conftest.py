"""A real gateway (grpc.aio server, relay, RabbitMQ) per test module, on SQLite
and on PostgreSQL, with the five principals registered — built by the harness
(``gateway.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.testing import BackgroundGateway, register_principals


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
        return self.background.client(agency, key or self.keys[agency])


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    """Override in a module to change settings of its gateway."""
    return settings


@pytest.fixture(scope="module")
def running(gateway_settings: Settings) -> Iterator[Running]:
    keys = register_principals(gateway_settings)
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
