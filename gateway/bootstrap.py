"""Composition root: builds the real gateway from settings (tests use it too)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.broker.relay import OutboxRelay
from gateway.broker.topology import Names
from gateway.config import Settings
from gateway.domain import registry
from gateway.domain.deadlines import Deadlines
from gateway.domain.linkage import Linkages
from gateway.domain.policy import Policy
from gateway.domain.units import Units
from gateway.security.atrest import DataKeys
from gateway.security.files import private_dir, restrict
from gateway.security.signer import GatewaySigner, load_or_create_key, load_or_create_secret
from gateway.service.exchange import ExchangeService
from gateway.service.leases import LeaseKeeper
from gateway.service.outbox import Outbox
from gateway.store import db, leases
from gateway.store.repository import Store

log = structlog.get_logger(__name__)


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The store for ``settings``; an empty database is migrated automatically.
    The data directory is made private (0700), the SQLite file 0600."""
    private_dir(settings.data_dir)
    keys = data_keys(settings)
    engine = db.make_engine(settings.effective_database_url)
    if migrate and (db.is_empty(engine) or db.current_revision(engine) is None):
        db.upgrade(engine, data_keys=keys)
    sqlite_file = db.sqlite_path(settings.effective_database_url)
    if sqlite_file is not None:
        restrict(sqlite_file)
    return Store(engine, keys)


def data_keys(settings: Settings) -> DataKeys:
    """The data keys that seal personal data in the database (``keys/data/``)."""
    return DataKeys.load_or_create(private_dir(settings.keys_dir / "data"))


def load_policy(settings: Settings) -> Policy:
    """The data directory's policy, written from the shipped default when missing."""
    if not settings.policy_file.exists():
        settings.policy_file.parent.mkdir(parents=True, exist_ok=True)
        settings.policy_file.write_text(Policy.default_text(), encoding="utf-8")
    return Policy.load(settings.policy_file)


def load_units(settings: Settings) -> Units:
    return Units.for_data_dir(settings.data_dir)


def gateway_signer(settings: Settings) -> GatewaySigner:
    key = load_or_create_key(settings.gateway_key_file)
    return GatewaySigner.from_key(settings.gateway_id, key)


def subject_keys(settings: Settings) -> Callable[[str], str]:
    """The subject key of a resident ID: HMAC-SHA256 under the gateway's own
    subject-index secret, so the index names nobody to a reader of the database."""
    secret = load_or_create_secret(settings.keys_dir / "subject-index.key")

    def key_for(resident_id: str) -> str:
        return hmac.new(secret, resident_id.upper().encode(), hashlib.sha256).hexdigest()

    return key_for


def pseudonym_keys(settings: Settings) -> Callable[[str], bytes]:
    """Per-recipient pseudonym keys, kept in the data directory, cached."""
    cache: dict[str, bytes] = {}
    lock = threading.Lock()

    def key_for(recipient: str) -> bytes:
        with lock:
            if recipient not in cache:
                path: Path = settings.keys_dir / "pseudonym" / f"{recipient}.key"
                cache[recipient] = load_or_create_secret(path)
            return cache[recipient]

    return key_for


@dataclass
class Gateway:
    """Everything a running gateway process holds."""

    settings: Settings
    store: Store
    policy: Policy
    names: Names
    service: ExchangeService
    relay: OutboxRelay
    relay_wake: threading.Event
    #: The leases of the duties that run once among replicas (relay, sweep, checkpoints).
    leases: LeaseKeeper


def exchange_service(
    settings: Settings,
    store: Store,
    *,
    linkages: Linkages | None = None,
    clock: Callable[[], float] = time.time,
    on_accept: Callable[[], None] = lambda: None,
) -> ExchangeService:
    """The exchange service over ``store`` with the data directory's policy,
    units and keys. ``linkages`` default to the installed ones (discovered
    before the policy is loaded: importing them registers the views and
    conditions the policy may name); tests pass their own, and a clock."""
    if linkages is None:
        linkages = registry.discover()
    return ExchangeService(
        store=store,
        policy=load_policy(settings),
        units=load_units(settings),
        signer=gateway_signer(settings),
        pseudonym_key=pseudonym_keys(settings),
        subject_key=subject_keys(settings),
        settings=settings,
        linkages=linkages,
        deadlines=Deadlines.load(settings.disposal_file).scaled(settings.disposal_time_scale),
        clock=clock,
        commit_batch=settings.commit_batch,
        on_accept=on_accept,
    )


def build(settings: Settings, *, clock: Callable[[], float] = time.time) -> Gateway:
    """The whole gateway of ``settings``: store, service and relay. ``clock``
    is the service's (tests move it to show what time changes)."""
    store = open_store(settings)
    wake = threading.Event()
    service = exchange_service(settings, store, clock=clock, on_accept=wake.set)
    names = Names(settings.broker_prefix)
    keeper = LeaseKeeper(store, listen=settings.listen, ttl_seconds=settings.lease_seconds)
    relay = OutboxRelay(
        settings.amqp_url,
        names,
        Outbox(store),
        window=settings.relay_window,
        batch=settings.relay_batch,
        wake=wake,
        may_run=lambda: keeper.holds(leases.RELAY),
    )
    return Gateway(settings, store, service.policy, names, service, relay, wake, keeper)


def recipients(policy: Policy) -> list[str]:
    """Principals that may receive messages (they get an inbox queue)."""
    return sorted({p.id for p in policy.principals() if p.role == "agency"})
