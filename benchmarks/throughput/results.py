"""What a phase measured: deliveries against receipts, rates, latencies, and
the RSS series of each gateway run."""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.throughput.mix import RECIPIENTS


class Deliveries:
    """What recipients received, against what receipts said they would."""

    def __init__(self) -> None:
        self.first: dict[bytes, float] = {}  # (mid, recipient) -> first arrival
        self.receipted: dict[bytes, float] = {}  # (mid, recipient) -> its receipt's arrival
        self.duplicate_of: Counter[bytes] = Counter()
        self.redelivered = 0
        self.senders: Counter[str] = Counter()
        self.expected: set[bytes] = set()
        self.missing: set[bytes] = set()
        self.last_progress = time.monotonic()

    @staticmethod
    def key(mid: str, recipient: int) -> bytes:
        try:
            return uuid.UUID(mid).bytes + bytes((recipient,))
        except ValueError:
            return mid.encode() + bytes((recipient,))

    def arrive(self, batch: list[tuple[str, int, float, bool, str]]) -> None:
        for mid, recipient, at, redelivered, sender in batch:
            key = self.key(mid, recipient)
            self.senders[sender] += 1
            self.redelivered += redelivered
            if key in self.first:
                self.duplicate_of[key] += 1
            else:
                self.first[key] = at
                self.missing.discard(key)
        if batch:
            self.last_progress = time.monotonic()

    def expect(self, receipts: list[tuple[str, tuple[str, ...], float]]) -> list[bytes]:
        keys = []
        for mid, recipients, receipted in receipts:
            for recipient in recipients:
                key = self.key(mid, RECIPIENTS.index(recipient))
                keys.append(key)
                self.receipted[key] = receipted
                self.expected.add(key)
                if key not in self.first:
                    self.missing.add(key)
        return keys

    def unexpected(self) -> int:
        return sum(1 for key in self.first if key not in self.expected)


@dataclass
class PhaseResult:
    """One phase's figures: what was sent, accepted and delivered, when, the
    latencies, CPU shares and the gateway's RSS samples."""

    name: str
    messages: int
    sent: int
    accepted: int
    deliveries: int
    delivered: int
    duplicates: int
    started: float
    last_receipt: float
    last_delivery: float
    cpu: dict[str, float]
    rss_kb: list[int]
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    #: Per delivery: the recipient had it this long after the sender had the receipt.
    delivery_latencies: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def gateway_cpu_ms_per_message(self) -> float:
        """The gateway's CPU time over the phase divided by the messages accepted."""
        if not self.accepted:
            return math.nan
        return self.cpu.get("gateway", 0.0) / 100 * self.wall_seconds / self.accepted * 1000

    @property
    def accept_rate(self) -> float:
        return self.accepted / max(self.last_receipt - self.started, 1e-9)

    @property
    def e2e_rate(self) -> float:
        if self.delivered < self.deliveries or not self.accepted:
            return 0.0
        return self.accepted / max(self.last_delivery - self.started, 1e-9)

    @property
    def e2e_seconds(self) -> float:
        return self.last_delivery - self.started

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies if values is None else values)
        if not data:
            return math.nan
        return data[min(len(data) - 1, max(0, math.ceil(q / 100 * len(data)) - 1))]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "messages_planned": self.messages,
            "messages_sent": self.sent,
            "accepted": self.accepted,
            "rejected_or_failed": self.errors,
            "accepted_per_second": round(self.accept_rate, 1),
            "deliveries_expected": self.deliveries,
            "deliveries_received": self.delivered,
            "duplicates": self.duplicates,
            "e2e_seconds": round(self.e2e_seconds, 3),
            "e2e_messages_per_second": round(self.e2e_rate, 1),
            "e2e_deliveries_per_second": round(self.delivered / max(self.e2e_seconds, 1e-9), 1),
            "cpu_percent": {k: round(v, 1) for k, v in self.cpu.items()},
            "rss_mb": {
                "min": round(min(self.rss_kb, default=0) / 1024, 1),
                "max": round(max(self.rss_kb, default=0) / 1024, 1),
            },
        }
        if self.latencies:
            out["latency_ms"] = {
                f"p{q:g}": round(self.percentile(q) * 1000, 2) for q in (50, 90, 99, 99.9)
            } | {"max": round(max(self.latencies) * 1000, 2)}
        if self.delivery_latencies:
            out["delivery_latency_ms"] = {
                f"p{q:g}": round(self.percentile(q, self.delivery_latencies) * 1000, 2)
                for q in (50, 90, 99)
            }
        if self.accepted and self.wall_seconds:
            out["gateway_cpu_ms_per_message"] = round(self.gateway_cpu_ms_per_message, 3)
        if self.service:
            out["service_time_ms"] = {
                f"p{q:g}": round(self.percentile(q, self.service) * 1000, 2) for q in (50, 99)
            }
        return out


def thin(series: Sequence[tuple[int, float]], points: int) -> list[tuple[int, float]]:
    """At most ``points`` evenly spaced points of ``series`` (first and last kept), MB rounded."""
    if len(series) <= points:
        return [(n, round(mb, 1)) for n, mb in series]
    step = (len(series) - 1) / (points - 1)
    return [
        (series[round(i * step)][0], round(series[round(i * step)][1], 1)) for i in range(points)
    ]


def rss_series(runs: list[dict[str, Any]], points: int = 12) -> dict[str, list[float]]:
    """Per gateway run, RSS (MB) at evenly spaced moments of the run."""
    out = {}
    for index, run in enumerate(runs):
        samples = run.get("rss_samples") or []
        if samples:
            step = max(1, len(samples) // points)
            picked = [*samples[::step][: points - 1], samples[-1]]
            out[f"{index}:{run['settings']}"] = [round(kb / 1024, 1) for _, _, kb in picked]
    return out
