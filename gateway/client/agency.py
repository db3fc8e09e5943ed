"""A small synchronous client for agencies' front-end processors (前置机).

client = AgencyClient.connect("127.0.0.1:7443", agency="judicial",
                              key=private_key, gateway_id="silian-gateway")
receipt = client.submit("roster.change", roster_change)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.security import issue_token, kid_for, public_raw, sign_message

TOKEN_TTL_SECONDS = 300


def build_envelope(
    agency: str,
    key: Ed25519PrivateKey,
    kind: str,
    message: Message,
    mid: str | None = None,
    kid: str | None = None,
) -> envelope_pb2.Envelope:
    """Serialize ``message`` deterministically and sign it as ``agency``."""
    payload = kinds.encode(message)
    mid = mid or str(uuid.uuid4())
    kid = kid or kid_for(public_raw(key))
    signature = sign_message(key, kid, mid=mid, kind=kind, iss=agency, payload=payload)
    return envelope_pb2.Envelope(
        mid=mid, kind=kind, sender=agency, payload=payload, signature=signature
    )


@dataclass
class AgencyClient:
    channel: grpc.Channel
    agency: str
    key: Ed25519PrivateKey
    gateway_id: str
    _token: str = ""
    _token_expires: float = 0.0
    stub: exchange_pb2_grpc.ExchangeStub = field(init=False)

    def __post_init__(self) -> None:
        self.stub = exchange_pb2_grpc.ExchangeStub(self.channel)
        self.kid = kid_for(public_raw(self.key))

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        agency: str,
        key: Ed25519PrivateKey,
        gateway_id: str = "silian-gateway",
        credentials: grpc.ChannelCredentials | None = None,
    ) -> AgencyClient:
        channel = (
            grpc.secure_channel(target, credentials)
            if credentials
            else grpc.insecure_channel(target)
        )
        return cls(channel, agency, key, gateway_id)

    def close(self) -> None:
        self.channel.close()

    def metadata(self) -> list[tuple[str, str]]:
        """Call metadata with a bearer token, renewed a minute before it expires."""
        if time.time() > self._token_expires - 60:
            self._token = issue_token(
                self.key,
                self.kid,
                issuer=self.agency,
                audience=self.gateway_id,
                ttl_seconds=TOKEN_TTL_SECONDS,
            )
            self._token_expires = time.time() + TOKEN_TTL_SECONDS
        return [("authorization", f"Bearer {self._token}")]

    def envelope(
        self, kind: str, message: Message, mid: str | None = None
    ) -> envelope_pb2.Envelope:
        return build_envelope(self.agency, self.key, kind, message, mid, self.kid)

    def submit(
        self, kind: str, message: Message, mid: str | None = None, timeout: float = 30
    ) -> envelope_pb2.Receipt:
        return self.submit_envelope(self.envelope(kind, message, mid), timeout)

    def submit_envelope(
        self, envelope: envelope_pb2.Envelope, timeout: float = 30
    ) -> envelope_pb2.Receipt:
        response = self.stub.Submit(
            exchange_pb2.SubmitRequest(envelope=envelope), metadata=self.metadata(), timeout=timeout
        )
        return response.receipt

    def submit_stream(
        self, envelopes: Iterable[envelope_pb2.Envelope]
    ) -> Iterator[exchange_pb2.SubmitStreamResponse]:
        requests = (exchange_pb2.SubmitStreamRequest(envelope=e) for e in envelopes)
        return self.stub.SubmitStream(requests, metadata=self.metadata())

    def receive(self, max_in_flight: int = 100, timeout: float | None = None) -> grpc.Future:
        """The Receive stream (iterate it; ``cancel()`` to stop)."""
        return self.stub.Receive(
            exchange_pb2.ReceiveRequest(max_in_flight=max_in_flight),
            metadata=self.metadata(),
            timeout=timeout,
        )

    def acknowledge(
        self, delivery_ids: Iterable[str], rejected: Iterable[str] = ()
    ) -> exchange_pb2.AcknowledgeResponse:
        """Settle deliveries: ``delivery_ids`` processed, ``rejected`` given back."""
        return self.stub.Acknowledge(
            exchange_pb2.AcknowledgeRequest(
                delivery_ids=list(delivery_ids), rejected_delivery_ids=list(rejected)
            ),
            metadata=self.metadata(),
            timeout=30,
        )

    def status(self, mid: str) -> exchange_pb2.GetStatusResponse:
        return self.stub.GetStatus(
            exchange_pb2.GetStatusRequest(mid=mid), metadata=self.metadata(), timeout=30
        )

    def drain(
        self, count: int, timeout: float = 10.0, ack: bool = True
    ) -> list[envelope_pb2.Delivery]:
        """Read up to ``count`` deliveries (waiting at most ``timeout`` seconds),
        acknowledging each while the stream is open unless ``ack`` is False."""
        stream = self.receive(max_in_flight=max(count, 1))
        timer = threading.Timer(timeout, stream.cancel)
        timer.start()
        received: list[envelope_pb2.Delivery] = []
        try:
            for response in stream:
                received.append(response.delivery)
                if ack:
                    self.acknowledge([response.delivery.delivery_id])
                if len(received) >= count:
                    break
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise
        finally:
            timer.cancel()
            stream.cancel()
        return received
