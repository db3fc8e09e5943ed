"""What every servicer shares: tolerant request decoding and the caller's
mTLS identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from gateway.domain.errors import InvalidMessage


class Undecodable:
    """Stands in for a request whose bytes are not the expected protobuf."""


UNDECODABLE = Undecodable()


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # protobuf raises DecodeError, and others on odd input
            return UNDECODABLE

    return deserialize


class TolerantRegistration:
    """Wraps a server so generated handlers decode requests without raising:
    an undecodable request then gets INVALID_ARGUMENT from the servicer
    instead of grpc's generic INTERNAL."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self._server.add_registered_method_handlers(
            service,
            {
                name: handler._replace(request_deserializer=_tolerant(handler.request_deserializer))
                for name, handler in handlers.items()
            },
        )

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Registered handlers above take precedence; nothing else to add."""


def undecodable(request: Any) -> bool:
    return request is UNDECODABLE


BAD_REQUEST = InvalidMessage("UNPARSEABLE_REQUEST", "the request is not a valid protobuf message")


def certificate_agency(context: grpc.aio.ServicerContext) -> str | None:
    """The agency named by the client certificate's common name, under mTLS."""
    names = (context.auth_context() or {}).get("x509_common_name")
    return names[0].decode() if names else None
