"""Authorization is continuous: an open Receive or SubmitStream ends
UNAUTHENTICATED, with the reason, soon after its key is revoked and once its
token expires; the agency side's inbox reader goes on with a fresh token; and
an agency may hold only so many Receive streams (real gateway and RabbitMQ)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import bootstrap
from gateway.client import build_envelope
from gateway.client.inbox import InboxReader
from gateway.client.keys import gateway_keys
from gateway.client.submit import reason_of
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.security import generate_private_key, kid_for, public_raw
from gateway.service import provision
from gateway.store.repository import Store
from gateway.testing import enrolment, referral
from tests.e2e.conftest import Running
from tests.helpers import bearer, known_as

STREAMS = 2
#: Far beyond "a few seconds": a stream still open by then was not ended.
PATIENCE = 30


#: Short, so an expired token ends its stream soon; not shorter: a message's
#: ``iat`` is whole seconds and must be within this of the gateway's clock when
#: it arrives (1 s failed a submit now and then on a busy machine).
CLOCK_SKEW_SECONDS = 5


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, clock_skew_seconds=CLOCK_SKEW_SECONDS, max_receive_streams=STREAMS)


@pytest.fixture(scope="module")
def store(running: Running) -> Iterator[Store]:
    store = bootstrap.open_store(running.settings)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module")
def stub(running: Running) -> Iterator[exchange_pb2_grpc.ExchangeStub]:
    with grpc.insecure_channel(running.target) as channel:
        yield exchange_pb2_grpc.ExchangeStub(channel)


def _metadata(running: Running, agency: str, key: Ed25519PrivateKey, ttl: int = 300) -> list:
    return bearer(key, agency, running.settings.gateway_id, ttl_seconds=ttl)


def _new_key(store: Store, agency: str) -> Ed25519PrivateKey:
    key = generate_private_key()
    provision.add_key(store, agency, kid_for(public_raw(key)), public_raw(key), "test")
    return key


def _ended(call: Iterator[object]) -> grpc.RpcError:
    """Read ``call`` to its end; the error that ended it."""
    with pytest.raises(grpc.RpcError) as ended:
        for _ in call:
            pass
    return ended.value


def _receive(stub: exchange_pb2_grpc.ExchangeStub, metadata: list) -> Iterator[object]:
    return stub.Receive(exchange_pb2.ReceiveRequest(), metadata=metadata, timeout=PATIENCE)


def test_a_receive_stream_ends_soon_after_its_key_is_revoked(
    running: Running, stub, store: Store
) -> None:
    key = _new_key(store, "police")
    call = _receive(stub, _metadata(running, "police", key))
    judicial = running.client("judicial")
    judicial.submit(kinds.ROSTER_CHANGE, enrolment())  # the police get it on this stream
    next(iter(call))
    provision.revoke_key(store, "police", kid_for(public_raw(key)), "test")
    revoked_at = time.monotonic()
    err = _ended(call)
    judicial.close()
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert reason_of(err) == "REVOKED_KEY"
    assert "the stream ended" in err.details()  # type: ignore[attr-defined]
    print(f"stream ended {time.monotonic() - revoked_at:.1f} s after the revocation")


def test_a_receive_stream_ends_when_its_token_expires(running: Running, stub) -> None:
    call = _receive(stub, _metadata(running, "ngo", running.keys["ngo"], ttl=3))
    err = _ended(call)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert reason_of(err) == "EXPIRED_TOKEN"


def test_a_submit_stream_ends_soon_after_its_key_is_revoked(
    running: Running, stub, store: Store
) -> None:
    key = _new_key(store, "judicial")
    requests: queue.Queue[exchange_pb2.SubmitStreamRequest | None] = queue.Queue()

    def sending() -> Iterator[exchange_pb2.SubmitStreamRequest]:
        while (request := requests.get()) is not None:
            yield request

    call = stub.SubmitStream(
        sending(), metadata=_metadata(running, "judicial", key), timeout=PATIENCE
    )
    requests.put(
        exchange_pb2.SubmitStreamRequest(
            envelope=build_envelope("judicial", key, kinds.ROSTER_CHANGE, enrolment())
        )
    )
    answers = iter(call)
    assert next(answers).HasField("receipt")
    provision.revoke_key(store, "judicial", kid_for(public_raw(key)), "test")
    err = _ended(answers)
    requests.put(None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert reason_of(err) == "REVOKED_KEY"


@dataclass
class ShortTokens:
    """A Connection whose every call gets a fresh token of two seconds."""

    agency: str
    key: Ed25519PrivateKey
    stub: exchange_pb2_grpc.ExchangeStub
    audience: str
    gateway_keys: tuple[bytes, ...] = ()
    issued: int = 0

    def metadata(self) -> list[tuple[str, str]]:
        self.issued += 1
        return bearer(self.key, self.agency, self.audience, ttl_seconds=2)


def test_the_inbox_reader_goes_on_with_a_fresh_token_when_its_stream_expires(
    running: Running, stub
) -> None:
    detox = ShortTokens(
        "detox",
        running.keys["detox"],
        stub,
        running.settings.gateway_id,
        gateway_keys(running.settings),
    )
    judicial = running.client("judicial")
    arrived: queue.Queue[str] = queue.Queue()
    reader = InboxReader(detox, idle_seconds=0)
    reader.start(lambda delivery: arrived.put(delivery.mid))
    try:
        deadline = time.monotonic() + PATIENCE
        while detox.issued < 3 and time.monotonic() < deadline:  # two streams expired
            reader.wait_for(lambda: reader.error is not None, timeout=0.2)
        assert reader.error is None and detox.issued >= 3
        message = referral()
        message.drug_related = True
        sent = judicial.submit(kinds.SERVICE_REFERRAL, message)
        # The detox centre gets a minimized view: it knows the message by an id of its own.
        expected = known_as(running.settings, "detox", "judicial", sent.mid)
        assert arrived.get(timeout=PATIENCE) == expected
    finally:
        reader.close()
        judicial.close()
    assert reader.error is None


def test_an_agency_may_hold_only_so_many_receive_streams(running: Running, stub) -> None:
    key = running.keys["procuratorate"]
    held = [_receive(stub, _metadata(running, "procuratorate", key)) for _ in range(STREAMS)]
    deadline = time.monotonic() + PATIENCE
    while True:  # until the gateway counted the held streams as open
        extra = stub.Receive(
            exchange_pb2.ReceiveRequest(),
            metadata=_metadata(running, "procuratorate", key),
            timeout=1,
        )
        err = _ended(extra)
        accepted = err.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
        if not accepted or time.monotonic() > deadline:
            break
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert reason_of(err) == "TOO_MANY_STREAMS"
    police = _receive(stub, _metadata(running, "police", running.keys["police"]))
    judicial = running.client("judicial")
    sent = judicial.submit(kinds.ROSTER_CHANGE, enrolment())
    assert any(
        response.delivery.mid == sent.mid
        for response in police  # type: ignore[attr-defined]
    )
    for call in [*held, police]:
        call.cancel()  # type: ignore[attr-defined]
    judicial.close()
