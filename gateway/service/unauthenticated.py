"""Unauthenticated calls are counted, not recorded one by one.

A call whose authentication fails costs the gateway an audit entry, and
anyone who can reach the port can make thousands of them. So, per peer (the
caller's IP address) and minute:

* the first failure of each reason is audited at once (``rejected``, actor
  ``anonymous``), so an agency setting up its client sees its mistake;
* the others are counted, and one ``unauthenticated`` entry per peer and
  minute records how many there were, by reason (and how many calls were
  refused unread, below), once the minute is over;
* past ``max_per_minute`` failures, the peer's calls are refused
  (RESOURCE_EXHAUSTED, ``TOO_MANY_FAILED_AUTHENTICATIONS``, with a retry hint
  to the end of the minute) before their token is even looked at — except
  calls with a token that already verified, so an agency behind the same
  address keeps working.

At most ``max_peers`` peers are tracked; the least recently seen one is
summarized early to make room.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.domain import events
from gateway.domain.errors import Overloaded
from gateway.domain.events import AuditEvent

ANONYMOUS = "anonymous"
WINDOW_SECONDS = 60.0


@dataclass
class _Window:
    start: float
    reasons: Counter[str] = field(default_factory=Counter)
    refused: int = 0

    @property
    def calls(self) -> int:
        return sum(self.reasons.values())


def peer_address(peer: str) -> str:
    """The address of a gRPC peer (``ipv4:10.0.0.7:51234`` → ``10.0.0.7``,
    ``ipv6:[::1]:5`` → ``::1``); other forms as they are, clipped."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and rest:
        host = rest.rsplit(":", 1)[0]
        return host.strip("[]")
    return peer[:64]


class UnauthenticatedCalls:
    """Counts failed authentications per peer and minute (see the module docstring)."""

    def __init__(
        self,
        max_per_minute: int,
        *,
        max_peers: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max = max_per_minute
        self._max_peers = max_peers
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def admit(self, peer: str) -> None:
        """Raise Overloaded if ``peer`` failed too often this minute."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(peer)
            if window is None or now - window.start >= WINDOW_SECONDS:
                return
            if window.calls >= self._max:
                window.refused += 1
                raise Overloaded(
                    "TOO_MANY_FAILED_AUTHENTICATIONS",
                    f"{window.calls} calls from this address failed authentication "
                    "this minute; check the client's key and token, then retry",
                    retry_after_seconds=max(0.0, window.start + WINDOW_SECONDS - now),
                )

    def failed(self, peer: str, reason: str) -> tuple[bool, list[AuditEvent]]:
        """Count a failure; returns whether to audit this one by itself, and the
        summaries of windows that are over (to be recorded now)."""
        now = self._clock()
        with self._lock:
            summaries = self._close(now)
            window = self._windows.get(peer)
            if window is None:
                window = self._windows[peer] = _Window(now)
            self._windows.move_to_end(peer)
            window.reasons[reason] += 1
            first = window.reasons[reason] == 1
            while len(self._windows) > self._max_peers:
                evicted, oldest = self._windows.popitem(last=False)
                summaries += _summary(evicted, oldest, now)
        return first, summaries

    def summaries(self, *, everything: bool = False) -> list[AuditEvent]:
        """The summaries of windows that are over (all, if ``everything``), forgetting them."""
        now = self._clock()
        with self._lock:
            if not everything:
                return self._close(now)
            closed = [e for peer, w in self._windows.items() for e in _summary(peer, w, now)]
            self._windows.clear()
            return closed

    def _close(self, now: float) -> list[AuditEvent]:
        over = [p for p, w in self._windows.items() if now - w.start >= WINDOW_SECONDS]
        return [e for peer in over for e in _summary(peer, self._windows.pop(peer), now)]


def _summary(peer: str, window: _Window, now: float) -> list[AuditEvent]:
    """The entry of a window, if it counted failures not audited one by one."""
    counted = window.calls - len(window.reasons)
    if counted <= 0 and not window.refused:
        return []
    end = min(now, window.start + WINDOW_SECONDS)
    return [
        AuditEvent(
            events.UNAUTHENTICATED,
            ANONYMOUS,
            detail={
                "peer": peer,
                "calls": window.calls,
                "not_audited_singly": counted,
                "refused_unread": window.refused,
                "reasons": ",".join(f"{r}={n}" for r, n in sorted(window.reasons.items())),
                "from": _iso(window.start),
                "to": _iso(end),
            },
        )
    ]


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
