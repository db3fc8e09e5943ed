"""The agency side's one inbox reader, against a fake Exchange stub: batched
acknowledgements, idle timeout, limit, and refusal of deliveries the gateway
did not sign for this agency."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import grpc
import pytest

from gateway.client import InboxReader, check_delivery
from gateway.client.inbox import NoGatewayKeys, describe_refusals
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import generate_private_key, kid_for, public_raw, sign_gateway
from tests.unit.exchange_fakes import FakeAgency, FakeExchange, FakeRpcError

GATEWAY = generate_private_key()
OTHER = generate_private_key()


def _delivery(
    number: int,
    *,
    recipient: str = "police",
    payload: bytes = b"view",
    key: object = GATEWAY,
    signed: dict[str, str] | None = None,
) -> envelope_pb2.Delivery:
    """A delivery signed the way the gateway signs one; ``signed`` overrides claims."""
    mid = f"00000000-0000-0000-0000-{number:012d}"
    claims = {
        "iss": "silian-gateway",
        "mid": mid,
        "kind": "roster.change",
        "sub": recipient,
        "snd": "judicial",
        "sha256": hashlib.sha256(payload).hexdigest(),
        **(signed or {}),
    }
    assert key is GATEWAY or key is OTHER
    signature = sign_gateway(key, kid_for(public_raw(key)), claims)  # type: ignore[arg-type]
    return envelope_pb2.Delivery(
        delivery_id=f"d{number}",
        mid=mid,
        kind="roster.change",
        sender="judicial",
        recipient=recipient,
        payload=payload,
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        signature=signature,
    )


def _checked(exchange: FakeExchange) -> FakeAgency:
    return FakeAgency(exchange, gateway_keys=(public_raw(GATEWAY),))


def test_what_is_settled_while_an_acknowledge_call_is_out_goes_in_the_next_call() -> None:
    gate = threading.Event()
    exchange = FakeExchange([_delivery(n) for n in range(1, 5)], gate=gate)
    with InboxReader(_checked(exchange)) as inbox:
        deliveries = iter(inbox)
        inbox.acknowledge(next(deliveries))
        assert exchange.first_out.wait(10)
        for _ in range(3):
            inbox.acknowledge(next(deliveries))
        gate.set()
        inbox.flush()
    assert exchange.acknowledged_ids == [["d1"], ["d2", "d3", "d4"]]
    assert inbox.acknowledged == 4


def test_reading_stops_after_the_idle_time_and_after_the_limit() -> None:
    idle = FakeExchange([_delivery(1), _delivery(2)])
    with InboxReader(_checked(idle), idle_seconds=0.2) as inbox:
        assert [d.mid for d in inbox] == [_delivery(1).mid, _delivery(2).mid]
    limited = FakeExchange([_delivery(n) for n in range(1, 6)])
    with InboxReader(_checked(limited), limit=3) as inbox:
        assert len(list(inbox)) == 3
    assert limited.acknowledgements == []  # nothing was said to be processed
    assert limited.calls[0].cancelled.is_set()


def test_a_total_timeout_ends_a_quiet_inbox() -> None:
    with InboxReader(_checked(FakeExchange()), timeout=0.2) as inbox:
        assert list(inbox) == []


def test_a_delivery_the_gateway_did_not_sign_for_this_agency_is_given_back_not_handed_over() -> (
    None
):
    good = _delivery(1)
    forged = _delivery(2, key=OTHER)
    tampered = _delivery(3)
    tampered.payload = b"another view"
    misaddressed = _delivery(4, recipient="procuratorate")
    misaddressed.recipient = "police"
    resent = _delivery(5, signed={"snd": "police"})
    exchange = FakeExchange([forged, tampered, good, misaddressed, resent])
    seen: list[str] = []
    with InboxReader(
        _checked(exchange), idle_seconds=0.2, on_refused=lambda r: seen.append(r.delivery.mid)
    ) as inbox:
        handed = list(inbox)
        for delivery in handed:
            inbox.acknowledge(delivery)
        inbox.flush()
    assert [d.mid for d in handed] == [good.mid]
    assert (
        [r.delivery.mid for r in inbox.refused]
        == seen
        == [
            forged.mid,
            tampered.mid,
            misaddressed.mid,
            resent.mid,
        ]
    )
    assert [r.reason for r in inbox.refused] == [
        "the gateway's signature does not verify",
        f"the gateway signed payload digest {hashlib.sha256(b'view').hexdigest()!r}, "
        f"the delivery has {hashlib.sha256(b'another view').hexdigest()!r}",
        "the gateway signed addressee 'procuratorate', the delivery has 'police'",
        "the gateway signed sender 'police', the delivery has 'judicial'",
    ]
    assert sorted(exchange.returned_ids) == ["d2", "d3", "d4", "d5"]
    assert [i for ids in exchange.acknowledged_ids for i in ids] == ["d1"]
    assert describe_refusals(inbox.refused)[0] == (
        f"refused delivery {forged.mid} (roster.change from judicial): "
        "the gateway's signature does not verify; given back"
    )


def test_without_the_gateway_keys_the_reader_does_not_open() -> None:
    exchange = FakeExchange([_delivery(1)])
    with pytest.raises(NoGatewayKeys, match="--gateway-jwks"):
        InboxReader(FakeAgency(exchange, gateway_keys=()), idle_seconds=0.2)
    assert exchange.calls == []


def test_any_of_the_gateway_keys_may_verify_a_delivery() -> None:
    forged = _delivery(1, key=OTHER)
    assert check_delivery(forged, "police", [public_raw(GATEWAY)]) is not None
    assert check_delivery(forged, "police", [public_raw(GATEWAY), public_raw(OTHER)]) is None


def test_a_failed_stream_is_raised_to_the_caller() -> None:
    exchange = FakeExchange(
        [_delivery(1)], receive_error=FakeRpcError(grpc.StatusCode.UNAUTHENTICATED)
    )
    with InboxReader(_checked(exchange)) as inbox, pytest.raises(grpc.RpcError) as caught:
        for delivery in inbox:
            inbox.acknowledge(delivery)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert inbox.error is caught.value


def test_a_failed_acknowledgement_ends_the_reader_and_is_raised() -> None:
    exchange = FakeExchange(
        [_delivery(1)], refuse_acknowledge=FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    )
    with InboxReader(_checked(exchange)) as inbox:
        inbox.acknowledge(next(iter(inbox)))
        with pytest.raises(grpc.RpcError):
            inbox.flush()
    assert exchange.calls[0].cancelled.is_set()


def test_in_the_background_each_delivery_is_acknowledged_once_processed() -> None:
    exchange = FakeExchange([_delivery(n) for n in range(1, 4)])
    processed: list[str] = []
    acknowledged: list[str] = []
    with InboxReader(
        _checked(exchange), on_acknowledged=lambda ds: acknowledged.extend(d.mid for d in ds)
    ) as inbox:
        inbox.start(lambda delivery: processed.append(delivery.mid))
        assert inbox.wait_for(lambda: len(acknowledged) == 3, timeout=10)
        assert inbox.all_settled()
    assert processed == acknowledged == [_delivery(n).mid for n in range(1, 4)]


def test_a_failing_handler_ends_the_background_reader() -> None:
    def broken(delivery: envelope_pb2.Delivery) -> None:
        raise RuntimeError("cannot file it")

    with InboxReader(_checked(FakeExchange([_delivery(1)]))) as inbox:
        inbox.start(broken)
        assert not inbox.wait_for(lambda: False, timeout=10)
    assert isinstance(inbox.error, RuntimeError)


@pytest.fixture(autouse=True)
def _no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        thread.join(5)  # a fake stream's responder ends once it reads the reader's end
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left, left
