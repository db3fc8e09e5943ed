"""The bureau's feeds: every accepted message and alert on the topic exchange
``<prefix>.feed`` (routing key ``<kind>.<unit>.<sender>``) and in the stream
queue ``<prefix>.feed.stream`` for replay by offset or time.

A bureau system can use any AMQP client: bind its own queue to the exchange
with a pattern (``*.610302.*`` for one unit, ``alert.#`` for alerts), or read
the stream from an offset. Each body is a serialized ``silian.v1.Delivery``
signed by the gateway; ``verify`` checks it with the gateway's public key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pika
import structlog
from google.protobuf.message import DecodeError

from gateway.broker.topology import Names, blocking_channel
from gateway.domain.routing import sha256_hex
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import verify_gateway

log = structlog.get_logger(__name__)

#: Most messages a live tail's own queue holds; the oldest are dropped beyond
#: it, so a consumer that falls behind never slows or blocks the gateway.
LIVE_QUEUE_LIMIT = 10_000


@dataclass(frozen=True)
class FeedMessage:
    kind: str
    unit: str
    sender: str
    delivery: envelope_pb2.Delivery
    verified: bool
    offset: int | None  # position in the stream, when read from it


def pattern(kind: str | None, unit: str | None) -> str:
    """The topic binding pattern for a kind and/or unit (None: any). A kind
    has one or more words ("alert", "roster.change"), hence "#" for any."""
    return f"{kind or '#'}.{unit or '*'}.*"


def verify(delivery: envelope_pb2.Delivery, gateway_public: bytes) -> bool:
    """Whether the gateway signed this delivery and its payload is the one signed."""
    try:
        claims = verify_gateway(delivery.signature, gateway_public)
    except Exception:  # any failure to verify is a "no"
        return False
    return (
        claims.get("mid") == delivery.mid
        and claims.get("sha256") == sha256_hex(delivery.payload) == delivery.payload_sha256
    )


def _message(
    routing_key: str, body: bytes, public: bytes, offset: int | None
) -> FeedMessage | None:
    parts = routing_key.rsplit(".", 2)  # kinds contain dots; units and senders don't
    if len(parts) != 3:
        return None
    kind, unit, sender = parts
    try:
        delivery = envelope_pb2.Delivery.FromString(body)
    except DecodeError:
        log.warning("feed.undecodable", routing_key=routing_key)
        return None
    return FeedMessage(kind, unit, sender, delivery, verify(delivery, public), offset)


def tail(
    url: str,
    names: Names,
    gateway_public: bytes,
    on_message: Callable[[FeedMessage], None],
    stop: threading.Event,
    *,
    kind: str | None = None,
    unit: str | None = None,
    start: int | datetime | str | None = None,
    idle_seconds: float = 1.0,
) -> None:
    """Call ``on_message`` for feed messages matching ``kind``/``unit`` until
    ``stop`` is set. ``start`` None follows the live feed from now through a
    bounded queue of its own; an offset, a time, or "first"/"last" replays
    the stream from there (the stream holds everything; filtering is here)."""
    with blocking_channel(url) as channel:
        queue = names.feed_stream if start is not None else _live_queue(channel, names, kind, unit)
        channel.basic_qos(prefetch_count=500)  # a prefetch is mandatory on streams
        # pika sends a datetime as an AMQP timestamp: the stream starts there.
        arguments = {} if start is None else {"x-stream-offset": start}
        for method, properties, body in channel.consume(
            queue, arguments=arguments, inactivity_timeout=idle_seconds
        ):
            if stop.is_set():
                break
            if method is None:
                continue
            offset = (
                (properties.headers or {}).get("x-stream-offset") if start is not None else None
            )
            message = _message(method.routing_key, body, gateway_public, offset)
            channel.basic_ack(method.delivery_tag)
            if (
                message is None
                or (kind and message.kind != kind)
                or (unit and message.unit != unit)
            ):
                continue
            on_message(message)
        channel.cancel()


def _live_queue(
    channel: pika.adapters.blocking_connection.BlockingChannel,
    names: Names,
    kind: str | None,
    unit: str | None,
) -> str:
    declared = channel.queue_declare(
        "",
        exclusive=True,
        auto_delete=True,
        arguments={"x-max-length": LIVE_QUEUE_LIMIT, "x-overflow": "drop-head"},
    )
    queue = declared.method.queue
    channel.queue_bind(queue, names.feed_exchange, routing_key=pattern(kind, unit))
    return queue
