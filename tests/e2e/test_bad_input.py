"""Every kind of bad input gets its own status, reason and field, is audited,
and loses nothing that was accepted."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest
import structlog.testing
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import select

from gateway import bootstrap
from gateway.client import build_envelope
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.security import generate_private_key, kid_for, public_raw, sign_message
from gateway.service import provision
from gateway.store.models import AuditEntry
from gateway.store.repository import Store
from gateway.testing import enrolment, resident_id
from gateway.testing import referral as referral_of
from tests.e2e.conftest import Running
from tests.helpers import bearer, known_as, receive_mids

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, max_message_bytes=LIMIT)


@pytest.fixture(scope="module")
def store(running: Running) -> Iterator[Store]:
    store = bootstrap.open_store(running.settings)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module")
def stub(running: Running) -> Iterator[exchange_pb2_grpc.ExchangeStub]:
    with grpc.insecure_channel(running.target) as channel:
        yield exchange_pb2_grpc.ExchangeStub(channel)


def _token(running: Running, agency: str = "judicial", **kwargs: object) -> list[tuple[str, str]]:
    key = kwargs.pop("key", None) or running.keys[agency]
    options = {"issuer": agency, "audience": running.settings.gateway_id, **kwargs}
    return bearer(key, **options)  # type: ignore[arg-type]


def _submit(
    stub: exchange_pb2_grpc.ExchangeStub,
    envelope: envelope_pb2.Envelope,
    metadata: list[tuple[str, str]] | None,
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Submit(exchange_pb2.SubmitRequest(envelope=envelope), metadata=metadata, timeout=10)
    return caught.value


def _details(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, list[str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status details"
    reason, fields = "", []
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad):
            fields = [v.field for v in bad.field_violations]
    return err.code(), reason, fields  # type: ignore[attr-defined]


def _last_rejection(store: Store) -> dict[str, object]:
    with store.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.event == "rejected").order_by(AuditEntry.idx.desc())
        ).first()
    assert entry is not None
    return json.loads(entry.entry)


def _envelope(
    running: Running, agency: str = "judicial", **overrides: object
) -> envelope_pb2.Envelope:
    envelope = build_envelope(agency, running.keys[agency], kinds.ROSTER_CHANGE, enrolment())
    for name, value in overrides.items():
        setattr(envelope, name, value)
    return envelope


def _expect(
    err: grpc.RpcError, store: Store, code: grpc.StatusCode, reason: str, field: str | None = None
) -> None:
    got_code, got_reason, fields = _details(err)
    assert (got_code, got_reason) == (code, reason)
    if field:
        assert field in fields
    assert _last_rejection(store)["detail"]["reason"] == reason  # type: ignore[index]


UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def test_no_token(running: Running, stub, store) -> None:
    _expect(_submit(stub, _envelope(running), None), store, UNAUTH, "MISSING_TOKEN")


def test_malformed_token(running: Running, stub, store) -> None:
    err = _submit(stub, _envelope(running), [("authorization", "Bearer not.a.jwt")])
    _expect(err, store, UNAUTH, "MALFORMED_TOKEN")


def test_expired_token(running: Running, stub, store) -> None:
    err = _submit(stub, _envelope(running), _token(running, now=time.time() - 3600))
    _expect(err, store, UNAUTH, "EXPIRED_TOKEN")


def test_wrong_audience(running: Running, stub, store) -> None:
    err = _submit(stub, _envelope(running), _token(running, audience="another-gateway"))
    _expect(err, store, UNAUTH, "WRONG_AUDIENCE")


def test_unknown_agency(running: Running, stub, store) -> None:
    err = _submit(stub, _envelope(running), _token(running, "courts", key=generate_private_key()))
    _expect(err, store, UNAUTH, "UNKNOWN_AGENCY")


def test_revoked_key(running: Running, stub, store) -> None:
    key = generate_private_key()
    kid = kid_for(public_raw(key))
    provision.add_key(store, "judicial", kid, public_raw(key), "test")
    provision.revoke_key(store, "judicial", kid, "test")
    err = _submit(stub, _envelope(running), _token(running, key=key))
    _expect(err, store, UNAUTH, "REVOKED_KEY")


def test_a_signature_by_an_unknown_key_is_unauthenticated_as_a_token_by_one(
    running: Running, stub, store
) -> None:
    stranger = generate_private_key()
    envelope = build_envelope("judicial", stranger, kinds.ROSTER_CHANGE, enrolment())
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, UNAUTH, "UNKNOWN_KEY", "envelope.signature")
    err = _submit(stub, _envelope(running), _token(running, key=stranger))
    _expect(err, store, UNAUTH, "UNKNOWN_KEY")


def test_token_issuer_differs_from_sender(running: Running, stub, store) -> None:
    err = _submit(stub, _envelope(running, "judicial"), _token(running, "police"))
    _expect(err, store, grpc.StatusCode.PERMISSION_DENIED, "SENDER_NOT_CALLER", "envelope.sender")


def test_bad_message_signature(running: Running, stub, store) -> None:
    envelope = _envelope(running)
    forged = sign_message(
        generate_private_key(),
        kid_for(public_raw(running.keys["judicial"])),
        mid=envelope.mid,
        kind=envelope.kind,
        iss="judicial",
        payload=envelope.payload,
    )
    envelope.signature = forged
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "BAD_SIGNATURE")


def test_payload_digest_mismatch(running: Running, stub, store) -> None:
    envelope = _envelope(running)
    envelope.payload = kinds.encode(enrolment())
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "DIGEST_MISMATCH", "envelope.payload")


def test_mid_reused_with_another_payload(running: Running, stub, store) -> None:
    judicial = running.client("judicial")
    mid = str(uuid.uuid4())
    first = judicial.submit(kinds.ROSTER_CHANGE, enrolment(), mid=mid)
    err = _submit(
        stub,
        build_envelope("judicial", running.keys["judicial"], kinds.ROSTER_CHANGE, enrolment(), mid),
        _token(running),
    )
    _expect(err, store, grpc.StatusCode.ALREADY_EXISTS, "MID_REUSED", "envelope.mid")
    assert judicial.status(mid).mid == first.mid
    judicial.close()


def test_unknown_kind(running: Running, stub, store) -> None:
    envelope = build_envelope("judicial", running.keys["judicial"], "roster.shuffle", enrolment())
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_KIND", "envelope.kind")


def test_kind_not_allowed_for_sender(running: Running, stub, store) -> None:
    envelope = build_envelope("police", running.keys["police"], kinds.ROSTER_CHANGE, enrolment())
    err = _submit(stub, envelope, _token(running, "police"))
    _expect(err, store, grpc.StatusCode.PERMISSION_DENIED, "KIND_NOT_ALLOWED", "envelope.kind")


def test_unparseable_payload(running: Running, stub, store) -> None:
    payload = b"\xff\xff\xff\xff"
    mid = str(uuid.uuid4())
    key = running.keys["judicial"]
    signature = sign_message(
        key,
        kid_for(public_raw(key)),
        mid=mid,
        kind=kinds.ROSTER_CHANGE,
        iss="judicial",
        payload=payload,
    )
    envelope = envelope_pb2.Envelope(
        mid=mid, kind=kinds.ROSTER_CHANGE, sender="judicial", payload=payload, signature=signature
    )
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "UNPARSEABLE_PAYLOAD", "envelope.payload")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda c: setattr(
                c.subject,
                "resident_id",
                c.subject.resident_id[:17] + ("0" if c.subject.resident_id[17] != "0" else "1"),
            ),
            "payload.subject.resident_id",
        ),
        (lambda c: setattr(c, "unit_code", "999999"), "payload.unit_code"),
        (lambda c: setattr(c, "term_end_date", "2000-01-01"), "payload.term_end_date"),
    ],
    ids=["bad-id-check-character", "unknown-unit", "end-before-start"],
)
def test_payload_failing_validation(running: Running, stub, store, mutate, field) -> None:
    change = enrolment()
    mutate(change)
    envelope = build_envelope("judicial", running.keys["judicial"], kinds.ROSTER_CHANGE, change)
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "PAYLOAD_INVALID", field)


def test_oversize_message(running: Running, stub, store) -> None:
    change = enrolment()
    change.reason = "x" * (LIMIT + 1)
    envelope = build_envelope("judicial", running.keys["judicial"], kinds.ROSTER_CHANGE, change)
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "MESSAGE_TOO_LARGE", "envelope.payload")


@pytest.mark.parametrize("offset", [-3600, 3600], ids=["past", "future"])
def test_iat_too_far_off(running: Running, stub, store, offset: int) -> None:
    key = running.keys["judicial"]
    payload = kinds.encode(enrolment())
    mid = str(uuid.uuid4())
    signature = sign_message(
        key,
        kid_for(public_raw(key)),
        mid=mid,
        kind=kinds.ROSTER_CHANGE,
        iss="judicial",
        payload=payload,
        iat=int(time.time()) + offset,
    )
    envelope = envelope_pb2.Envelope(
        mid=mid, kind=kinds.ROSTER_CHANGE, sender="judicial", payload=payload, signature=signature
    )
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "IAT_OUT_OF_RANGE")


def test_undecodable_request_is_invalid_argument(running: Running) -> None:
    with grpc.insecure_channel(running.target) as channel:
        raw = channel.unary_unary("/silian.v1.Exchange/Submit")
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\xff\xff\xff", metadata=_token(running), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_undecodable_subscribe_request_ends_the_stream_invalid_argument(running: Running) -> None:
    with grpc.insecure_channel(running.target) as channel:
        raw = channel.stream_stream("/silian.v1.Exchange/Subscribe")
        opened = exchange_pb2.SubscribeRequest(max_in_flight=1).SerializeToString()
        call = raw(iter([opened, b"\xff\xff\xff"]), metadata=_token(running, "police"), timeout=10)
        with pytest.raises(grpc.RpcError) as caught:
            list(call)
    assert _details(caught.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "UNPARSEABLE_REQUEST")


def test_subscribe_without_a_token_is_unauthenticated(running: Running, stub) -> None:
    call = stub.Subscribe(iter([exchange_pb2.SubscribeRequest()]), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        list(call)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_nothing_accepted_is_lost_among_bad_input(running: Running, stub) -> None:
    judicial = running.client("judicial")
    good = [judicial.submit(kinds.ROSTER_CHANGE, enrolment(resident_id())) for _ in range(3)]
    for _ in range(3):
        _submit(stub, _envelope(running, signature="garbage"), _token(running))
    police = running.client("police")
    received = receive_mids(police, [r.mid for r in good])
    assert {r.mid for r in good} <= set(received)
    judicial.close()
    police.close()


def test_nul_bytes_in_envelope_fields_are_refused_and_audited(
    running: Running, stub, store
) -> None:
    err = _submit(stub, _envelope(running, mid="\x00" * 8, kind="roster\x00"), _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "BAD_MID", "envelope.mid")
    assert _last_rejection(store)["mid"] == ""


def test_rejection_log_names_the_message_but_not_payload_values(
    running: Running, stub, store
) -> None:
    change = enrolment()
    bad_id = change.subject.resident_id[:17] + (
        "0" if change.subject.resident_id[17] != "0" else "1"
    )
    change.subject.resident_id = bad_id
    envelope = build_envelope("judicial", running.keys["judicial"], kinds.ROSTER_CHANGE, change)
    with structlog.testing.capture_logs() as logs:
        _submit(stub, envelope, _token(running))
    rejected = [e for e in logs if e["event"] == "message.rejected"]
    assert rejected and rejected[0]["mid"] == envelope.mid
    assert rejected[0]["kind"] == kinds.ROSTER_CHANGE and rejected[0]["agency"] == "judicial"
    assert "payload.subject.resident_id" in rejected[0]["fields"]
    assert bad_id not in repr(rejected) and bad_id[6:14] not in repr(rejected)


def test_an_unknown_field_carrying_a_name_is_refused_and_never_delivered(
    running: Running, stub, store
) -> None:
    person = resident_id()
    smuggled = "张某某 " + person
    referral = kinds.encode(referral_of(person))
    payload = referral + bytes([0x9A, 0x06, len(smuggled.encode())]) + smuggled.encode()
    key, mid = running.keys["judicial"], str(uuid.uuid4())
    signature = sign_message(
        key,
        kid_for(public_raw(key)),
        mid=mid,
        kind=kinds.SERVICE_REFERRAL,
        iss="judicial",
        payload=payload,
    )
    envelope = envelope_pb2.Envelope(
        mid=mid,
        kind=kinds.SERVICE_REFERRAL,
        sender="judicial",
        payload=payload,
        signature=signature,
    )
    err = _submit(stub, envelope, _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_FIELDS", "payload.#99")
    assert "99" in err.details()  # type: ignore[attr-defined]
    judicial, ngo = running.client("judicial"), running.client("ngo")
    after = judicial.submit(kinds.SERVICE_REFERRAL, referral_of(person))
    settings = running.settings
    # The NGO, which gets a minimized view, knows each message by an id of its own.
    expected, refused = (known_as(settings, "ngo", "judicial", m) for m in (after.mid, mid))
    received = receive_mids(ngo, [expected])
    assert expected in received and refused not in received
    assert all(smuggled.encode() not in d.SerializeToString() for d in received.values())
    judicial.close()
    ngo.close()


def test_settling_more_than_ten_thousand_ids_at_once_is_refused(running: Running, stub) -> None:
    ids = [f"session.{n}" for n in range(10_001)]
    with pytest.raises(grpc.RpcError) as caught:
        stub.Acknowledge(
            exchange_pb2.AcknowledgeRequest(delivery_ids=ids),
            metadata=_token(running, "police"),
            timeout=10,
        )
    code, reason, fields = _details(caught.value)
    assert (code, reason, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "TOO_MANY_IDS",
        ["delivery_ids"],
    )


def test_a_delivery_id_with_a_huge_or_odd_number_is_unknown_not_an_error(
    running: Running, stub
) -> None:
    ids = ["s." + "9" * 5000, "s.²", "s.-1"]
    answer = stub.Acknowledge(
        exchange_pb2.AcknowledgeRequest(delivery_ids=ids),
        metadata=_token(running, "police"),
        timeout=10,
    )
    assert list(answer.unknown_delivery_ids) == ids


def test_an_overlong_signature_is_refused_unread(running: Running, stub, store) -> None:
    err = _submit(stub, _envelope(running, signature="e" * 100_000), _token(running))
    _expect(err, store, grpc.StatusCode.INVALID_ARGUMENT, "BAD_SIGNATURE", "envelope.signature")
