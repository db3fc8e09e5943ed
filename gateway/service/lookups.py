"""The database look-ups routing needs (``gateway.domain.routing.Lookups``),
in their own transactions or in the caller's (inside the commit, where SQLite
allows no second writer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gateway.domain.routing import Lookups
from gateway.store.repository import Store


def of_store(store: Store, referrals: ReferralCache) -> Lookups:
    """Look-ups each in a transaction of its own; referrals from the cache."""
    return Lookups(referrals.is_referred, store.resident_ids_of_pseudonyms)


def active_since(idle_days: int, now: datetime | None = None) -> datetime | None:
    """The oldest referral or service record that keeps a referral running
    (``referral_idle_days``); None when referrals do not end by idling."""
    if idle_days <= 0:
        return None
    return (now or datetime.now(UTC)) - timedelta(days=idle_days)


def in_session(session: Session, idle_days: int = 0) -> Lookups:
    """Look-ups in session's transaction."""
    return Lookups(
        lambda recipient, pseudonym: Store.is_actively_referred_in(
            session, recipient, pseudonym, active_since(idle_days)
        ),
        lambda pseudonyms: Store.resident_ids_of_pseudonyms_in(session, pseudonyms),
    )


class ReferralCache:
    """Which pseudonyms are referred to each recipient (referrals that have not
    ended, ``gateway.domain.referrals``), cached, because routing asks for every
    message and recipient ("referred" routes) and the answer rarely changes.
    Invalidate it when a commit stored a referral or ended one; entries also
    expire after ``ttl_seconds`` (referrals made through another gateway
    process, and referrals idle past ``idle_days``)."""

    def __init__(
        self,
        store: Store,
        ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        idle_days: int = 0,
    ) -> None:
        self._store = store
        self._idle_days = idle_days
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, frozenset[str]]] = {}

    def is_referred(self, recipient: str, pseudonym: str) -> bool:
        with self._lock:
            cached = self._sets.get(recipient)
        if cached is None or self._clock() - cached[0] > self._ttl:
            referred = self._store.referred_pseudonyms(recipient, active_since(self._idle_days))
            cached = (self._clock(), frozenset(referred))
            with self._lock:
                self._sets[recipient] = cached
        return pseudonym in cached[1]

    def invalidate(self) -> None:
        with self._lock:
            self._sets.clear()
