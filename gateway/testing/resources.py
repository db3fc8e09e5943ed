"""What a gateway under test needs around it: a database of its own, broker
names to delete afterwards, registered principals, and clients that check it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from gateway import bootstrap
from gateway.broker import topology
from gateway.client import AgencyClient
from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.security import pki
from gateway.service.provision import ensure_principals

#: The PostgreSQL and RabbitMQ that ``scripts/test`` starts on this machine.
LOCAL_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@contextmanager
def postgres_schema(admin_url: str, prefix: str = "t") -> Iterator[str]:
    """A new, empty schema named ``<prefix>_<random>`` in the PostgreSQL database
    at ``admin_url``; yields the database URL whose search path is that schema,
    and drops the schema with everything in it on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, pool_pre_ping=True)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield f"{admin_url}?options=-csearch_path%3D{schema}"
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def delete_broker_names(amqp_url: str, prefix: str, agencies: Iterable[str]) -> None:
    """Delete the exchanges and queues a gateway with broker prefix ``prefix``
    declared for ``agencies``."""
    with topology.blocking_channel(amqp_url) as channel:
        topology.delete(channel, topology.Names(prefix), list(agencies))


def serving_mtls(settings: Settings, folder: Path, agencies: Iterable[str]) -> Settings:
    """A new CA with certificates for the gateway and each agency in ``folder``
    (``silian tls init``), and ``settings`` serving mTLS with them."""
    pki.init_pki(folder, agencies, gateway_name=settings.gateway_id)
    return replace(
        settings,
        tls_cert=str(folder / "gateway.pem"),
        tls_key=str(folder / "gateway.key"),
        client_ca=str(folder / "ca.pem"),
    )


def register_principals(settings: Settings) -> dict[str, Ed25519PrivateKey]:
    """Migrate the database of ``settings`` and register every principal of its
    policy that is not registered yet, with a new key; returns each one's key."""
    store = bootstrap.open_store(settings)
    try:
        return ensure_principals(settings, store, bootstrap.load_policy(settings))
    finally:
        store.engine.dispose()


def agency_client(
    target: str,
    settings: Settings,
    agency: str,
    key: Ed25519PrivateKey,
    credentials: grpc.ChannelCredentials | None = None,
) -> AgencyClient:
    """A client of ``agency`` at ``target`` that checks the gateway's signature of
    every delivery (with the public keys the gateway of ``settings`` wrote)."""
    return AgencyClient.connect(
        target,
        agency=agency,
        key=key,
        gateway_id=settings.gateway_id,
        gateway_keys=gateway_keys(settings),
        credentials=credentials,
    )
