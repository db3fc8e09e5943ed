"""Load shedding: past capacity the gateway refuses new messages (and new
Receive streams) with RESOURCE_EXHAUSTED and a retry hint instead of queueing
without bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gateway import metrics
from gateway.domain.errors import Overloaded


def parse_rate_limits(text: str) -> dict[str, float]:
    """``"police=1000, ngo=50"`` → messages per second per agency."""
    limits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        agency, sep, rate = part.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not sep or not agency.strip() or value <= 0:
            raise ValueError(f"rate_limits: {part!r} is not AGENCY=MESSAGES_PER_SECOND")
        limits[agency.strip()] = value
    return limits


class StreamSlots:
    """Caps each agency's concurrent inbox streams (each holds a thread and a
    broker connection): ``take(agency)`` raises Overloaded(TOO_MANY_STREAMS)
    when ``per_agency`` are open already; ``release(agency)`` gives one back."""

    def __init__(self, per_agency: int) -> None:
        self._max = per_agency
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def open(self, agency: str) -> int:
        return self._open.get(agency, 0)

    def take(self, agency: str) -> None:
        """Take one of the agency's slots; ``release`` gives it back."""
        with self._lock:
            if self.open(agency) >= self._max:
                raise Overloaded(
                    "TOO_MANY_STREAMS",
                    f"{agency!r} has {self._max} inbox streams open, the most allowed; "
                    "close one (or read with fewer) and retry",
                    retry_after_seconds=1.0,
                )
            self._open[agency] = self.open(agency) + 1

    def release(self, agency: str) -> None:
        with self._lock:
            self._open[agency] -= 1


@dataclass
class _Bucket:
    rate: float
    tokens: float
    stamp: float


class Admission:
    """Caps the messages in progress gateway-wide and each agency's rate.

    ``admit(agency)`` is a context manager around one message's work; it raises
    Overloaded when ``max_in_progress`` messages are already in progress or
    the agency's token bucket (rate/s, burst of one second) is empty.
    """

    def __init__(
        self,
        max_in_progress: int,
        rate_limits: dict[str, float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_in_progress
        self._clock = clock
        self._lock = threading.Lock()
        self._in_progress = 0
        self._buckets = {a: _Bucket(r, r, clock()) for a, r in rate_limits.items()}

    @property
    def in_progress(self) -> int:
        return self._in_progress

    @contextmanager
    def admit(self, agency: str) -> Iterator[None]:
        with self._lock:
            try:
                self._take_token(agency)
                if self._in_progress >= self._max:
                    raise Overloaded(
                        "OVERLOADED",
                        f"the gateway has {self._in_progress} messages in progress; retry shortly",
                        retry_after_seconds=0.2,
                    )
            except Overloaded as shed:  # refused before the message was read: no kind
                metrics.REFUSED.labels(agency, "", shed.reason).inc()
                raise
            self._in_progress += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_progress -= 1

    def _take_token(self, agency: str) -> None:
        bucket = self._buckets.get(agency)
        if bucket is None:
            return
        now = self._clock()
        bucket.tokens = min(bucket.rate, bucket.tokens + (now - bucket.stamp) * bucket.rate)
        bucket.stamp = now
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / bucket.rate
            raise Overloaded(
                "RATE_LIMITED",
                f"{agency!r} is limited to {bucket.rate:g} messages per second",
                retry_after_seconds=wait,
            )
        bucket.tokens -= 1
