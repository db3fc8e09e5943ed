"""The load's mix: who sends what on how many streams, and valid payloads
of those kinds naming people on the roster."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.testing import BAOJI_UNITS, Payloads

#: Who sends what in the load, and on how many concurrent streams.
#: (agency, kind, streams, share of the messages)
LANES: tuple[tuple[str, str, int, float], ...] = (
    ("judicial", "roster.change", 2, 0.4),
    ("police", "verification.result", 2, 0.4),
    ("procuratorate", "inspection.finding", 1, 0.2),
)
SENDERS = tuple(lane[0] for lane in LANES)
RECIPIENTS = ("police", "procuratorate", "judicial")


#: Seed of the roster pool, the same in every process.
POOL_SEED = 20261127
#: People on the roster before the load: police results must name someone
#: enrolled (the police linkage refuses others with NOT_FOUND).
POOL_SIZE = 300
#: What the police check in the load (no hits: no alerts).
ROUTINE_CHECKS = (pb.CHECK_TYPE_HOTEL_STAY, pb.CHECK_TYPE_TRAVEL, pb.CHECK_TYPE_INTERNET_CAFE)


class LoadPayloads(Payloads):
    """Payloads of the three kinds the load sends, from a generator seeded with
    ``seed``; ``pool`` is the roster pool, the same for every seed."""

    def __init__(self, seed: int) -> None:
        super().__init__(POOL_SEED)
        self.pool = [self.resident_id(self.rng.choice(BAOJI_UNITS)) for _ in range(POOL_SIZE)]
        self.rng = random.Random(seed)

    def roster_change(self, person: str | None = None) -> pb.RosterChange:
        """An enrolment of ``person`` (default someone new, in a random unit)."""
        return self.enrolment(person, unit=person[:6] if person else self.rng.choice(BAOJI_UNITS))

    def pool_check(self) -> pb.VerificationResult:
        """A routine check without a hit of someone in the pool, in their unit."""
        person = self.rng.choice(self.pool)
        return self.verification_result(
            person, unit=person[:6], check_type=self.rng.choice(ROUTINE_CHECKS)
        )

    def finding(self) -> pb.InspectionFinding:
        """A finding to a random unit."""
        return self.inspection_finding(self.rng.choice(BAOJI_UNITS))

    def for_kind(self, kind: str) -> Message:
        make: dict[str, Callable[[], Message]] = {
            kinds.ROSTER_CHANGE: self.roster_change,
            kinds.VERIFICATION_RESULT: self.pool_check,
            kinds.INSPECTION_FINDING: self.finding,
        }
        return make[kind]()


def split(total: int, shares: Sequence[float]) -> list[int]:
    """``total`` split by ``shares`` (largest remainder), summing to ``total``."""
    raw = [total * s / sum(shares) for s in shares]
    counts = [int(r) for r in raw]
    for index in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: total - sum(counts)]:
        counts[index] += 1
    return counts


def expected_deliveries(messages: int) -> int:
    """Inbox deliveries ``messages`` of the load mix make (roster.change goes to two)."""
    per_kind = {"roster.change": 2, "verification.result": 1, "inspection.finding": 1}
    counts = split(messages, [lane[3] for lane in LANES])
    return sum(per_kind[lane[1]] * n for lane, n in zip(LANES, counts, strict=True))
