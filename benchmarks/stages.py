"""Per-message cost of each stage of the accept path, in one process, against
the cryptographic floor.

    .venv/bin/python benchmarks/stages.py [--database-url URL] [--messages N]

Times, on a throw-away data directory, what a gateway does for one
roster.change (to police and procuratorate, plus the bureau's feed): the
signature check, validation, routing with its gateway signatures, the whole
``prepare``, and the group commit's rate in batches of 250 (no broker
needed). Then, for each kind a partner sends, it times ``prepare`` beside its
cryptographic floor measured in the same run with ``cryptography`` directly —
the one Ed25519 verification of the sender's signature plus the Ed25519
signatures the gateway must make (one per delivery and the feed's copy) —
and prints ``prepare ÷ floor``. It shows where a message's CPU goes, which the
throughput harness — the whole system under load — cannot separate.
"""

from __future__ import annotations

import argparse
import functools
import logging
import tempfile
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from gateway import bootstrap, logs
from gateway.client import build_envelope
from gateway.config import Settings
from gateway.domain import kinds, validation
from gateway.security import jws
from gateway.service import lookups as routing_lookups
from gateway.service.provision import ensure_principals
from gateway.testing import Payloads

REPEAT = 500


def _per_call(fn: Callable[[], object], number: int = REPEAT) -> float:
    """Microseconds per call: the best of five runs of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _floor(signatures: int) -> float:
    """µs of one Ed25519 verification and ``signatures`` Ed25519 signatures of
    a compact JWS's size, with ``cryptography`` alone."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    data = b"e" * 300
    signature = key.sign(data)
    verify = _per_call(lambda: public.verify(signature, data))
    sign = _per_call(lambda: key.sign(data))
    return verify + signatures * sign


def _samples(payloads: Payloads) -> dict[str, tuple[str, Message]]:
    return {
        "roster.change": ("judicial", payloads.enrolment()),
        "verification.result": ("police", payloads.verification_result()),
        "service.referral": ("judicial", payloads.referral()),
        "inspection.finding": ("procuratorate", payloads.inspection_finding()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a SQLite file")
    parser.add_argument("--messages", type=int, default=2000, help="messages for the commit rate")
    args = parser.parse_args()
    logs.configure("json", level=logging.WARNING)
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=args.database_url)
    gateway = bootstrap.build(settings)
    service = gateway.service
    keys = ensure_principals(settings, gateway.store, gateway.policy)
    key = keys["judicial"]
    payloads = Payloads()
    envelope = build_envelope("judicial", key, kinds.ROSTER_CHANGE, payloads.enrolment())
    message = kinds.decode(envelope.kind, envelope.payload)
    now = datetime.now(UTC)
    lookups = routing_lookups.of_store(gateway.store, service.referrals)
    stages = {
        "signature check (verify_message)": lambda: jws.verify_message(
            envelope.signature,
            service.keys,
            mid=envelope.mid,
            kind=envelope.kind,
            sender=envelope.sender,
            payload=envelope.payload,
            now=time.time(),
            max_skew_seconds=120,
        ),
        "validation": lambda: validation.validate(
            envelope.kind, message, units=service.units, today=now.date()
        ),
        "routing + gateway signatures": lambda: service.router.route(
            envelope, message, "0" * 64, now, now.date(), lookups
        ),
        "prepare (all of the above)": lambda: service.prepare(envelope, "judicial"),
    }
    for name, fn in stages.items():
        print(f"{name:<36} {_per_call(fn):8.1f} µs")

    print(f"\n{'kind':<22} {'prepare µs':>10} {'floor µs':>9} {'sigs':>4} {'prepare ÷ floor':>16}")
    for kind, (sender, sample) in _samples(payloads).items():
        one = build_envelope(sender, keys[sender], kind, sample)
        signatures = len(service.prepare(one, sender).message.outbox)
        prepare = _per_call(functools.partial(service.prepare, one, sender))
        floor = _floor(signatures)
        print(f"{kind:<22} {prepare:10.1f} {floor:9.1f} {signatures:4d} {prepare / floor:15.2f}×")

    service.committer.close()
    envelopes = [
        build_envelope("judicial", key, kinds.ROSTER_CHANGE, payloads.enrolment())
        for _ in range(args.messages)
    ]
    pending = [service.prepare(e, "judicial") for e in envelopes]
    start = time.perf_counter()
    for first in range(0, len(pending), 250):
        service.committer._commit(pending[first : first + 250])  # the writer's own step
    seconds = time.perf_counter() - start
    print(f"\n{'group commit, batches of 250':<36} {len(pending) / seconds:8.0f} msg/s")


if __name__ == "__main__":
    main()
