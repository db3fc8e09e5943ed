"""The database look-ups routing needs (``gateway.domain.routing.Lookups``),
in their own transactions or in the caller's (inside the commit, where SQLite
allows no second writer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from gateway.domain.routing import Lookups
from gateway.store.repository import Store


def of_store(store: Store, referrals: ReferralCache) -> Lookups:
    """Look-ups each in a transaction of its own; referrals from the cache."""
    return Lookups(referrals.is_referred, store.resident_ids_of_pseudonyms)


def in_session(session: Session) -> Lookups:
    """Look-ups in session's transaction."""
    return Lookups(
        lambda recipient, pseudonym: Store.is_referred_in(session, recipient, pseudonym),
        lambda pseudonyms: Store.resident_ids_of_pseudonyms_in(session, pseudonyms),
    )


class ReferralCache:
    """Which pseudonyms were referred to each recipient, cached, because routing
    asks for every message and recipient ("referred" routes) and the answer
    rarely changes. Invalidate it when a commit stored a referral; entries
    also expire after ``ttl_seconds`` (referrals made through another gateway
    process)."""

    def __init__(
        self, store: Store, ttl_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, frozenset[str]]] = {}

    def is_referred(self, recipient: str, pseudonym: str) -> bool:
        with self._lock:
            cached = self._sets.get(recipient)
        if cached is None or self._clock() - cached[0] > self._ttl:
            cached = (self._clock(), frozenset(self._store.referred_pseudonyms(recipient)))
            with self._lock:
                self._sets[recipient] = cached
        return pseudonym in cached[1]

    def invalidate(self) -> None:
        with self._lock:
            self._sets.clear()
