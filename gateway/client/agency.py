"""A small synchronous client for agencies' front-end processors (前置机).

client = AgencyClient.connect("gateway.example:7443", agency="judicial",
                              key=private_key, gateway_id="silian-gateway",
                              ca_bundle=Path("ca.pem"),            # TLS …
                              client_cert=Path("judicial.pem"),    # … and mTLS
                              client_key=Path("judicial.key"))
receipt = client.submit("roster.change", roster_change)
for delivery in client.drain(count=10, timeout=5):   # checked and acknowledged
    ...
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from gateway.client.inbox import InboxReader
from gateway.client.submit import MAX_ATTEMPTS, submit_many, submit_one
from gateway.client.tls import channel_credentials
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
    """One agency's connection to the gateway: it signs as ``agency`` with ``key``,
    submits with retries (``gateway.client.submit``) and reads its inbox through
    the one inbox reader (``gateway.client.inbox``), which checks every delivery
    against ``gateway_keys`` (the gateway's raw public keys; without them the inbox
    cannot be read)."""

    channel: grpc.Channel
    agency: str
    key: Ed25519PrivateKey
    gateway_id: str
    gateway_keys: tuple[bytes, ...] = ()
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
        gateway_keys: Sequence[bytes] = (),
        credentials: grpc.ChannelCredentials | None = None,
        ca_bundle: Path | bytes | None = None,
        client_cert: Path | bytes | None = None,
        client_key: Path | bytes | None = None,
    ) -> AgencyClient:
        """A client of the gateway at ``target``: over TLS when ``ca_bundle`` (the
        CA certificates the gateway's certificate is checked against, a PEM file or
        bytes) is given, presenting ``client_cert`` and ``client_key`` (mTLS) when
        they are; ``credentials`` are ready-made channel credentials instead.
        Plaintext without either (a gateway on loopback)."""
        if ca_bundle is not None:
            credentials = channel_credentials(ca_bundle, client_cert, client_key)
        elif client_cert is not None or client_key is not None:
            raise ValueError("a client certificate needs ca_bundle, the gateway's CA")
        channel = (
            grpc.secure_channel(target, credentials)
            if credentials
            else grpc.insecure_channel(target)
        )
        return cls(channel, agency, key, gateway_id, tuple(gateway_keys))

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
        self,
        kind: str,
        message: Message,
        mid: str | None = None,
        timeout: float = 30,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> envelope_pb2.Receipt:
        """Sign ``message`` and submit it; see ``submit_envelope``."""
        return self.submit_envelope(self.envelope(kind, message, mid), timeout, max_attempts)

    def submit_envelope(
        self,
        envelope: envelope_pb2.Envelope,
        timeout: float = 30,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> envelope_pb2.Receipt:
        """The gateway's receipt, retrying "try later" (``gateway.client.submit``);
        raises grpc.RpcError when refused."""
        return submit_one(self, envelope, timeout=timeout, max_attempts=max_attempts)

    def submit_stream(
        self,
        envelopes: Sequence[envelope_pb2.Envelope],
        on_answer: Callable[[exchange_pb2.SubmitStreamResponse], None] | None = None,
        timeout: float | None = None,
    ) -> list[exchange_pb2.SubmitStreamResponse]:
        """Submit many over SubmitStream, retrying "try later"; the final answer
        to each, in order (``gateway.client.submit.submit_many``)."""
        return submit_many(self, envelopes, on_answer=on_answer, timeout=timeout)

    def inbox(self, **options: Any) -> InboxReader:
        """A reader of this agency's inbox (``gateway.client.inbox.InboxReader``
        takes the options); close it, or use it in a ``with`` block."""
        return InboxReader(self, **options)

    def status(self, mid: str) -> exchange_pb2.GetStatusResponse:
        return self.stub.GetStatus(
            exchange_pb2.GetStatusRequest(mid=mid), metadata=self.metadata(), timeout=30
        )

    def drain(
        self, count: int, timeout: float = 10.0, ack: bool = True
    ) -> list[envelope_pb2.Delivery]:
        """Read up to ``count`` deliveries, waiting at most ``timeout`` seconds,
        and acknowledge them unless ``ack`` is False (then they come again)."""
        received: list[envelope_pb2.Delivery] = []
        with self.inbox(max_in_flight=max(count, 1), limit=count, timeout=timeout) as inbox:
            for delivery in inbox:
                received.append(delivery)
                if ack:
                    inbox.acknowledge(delivery)
        return received
