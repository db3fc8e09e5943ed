"""The one error handler of every ``silian`` command: an expected failure is
one line on stderr (click's ``Error: …``) and exit status 1, never a traceback.

Expected failures are what the user can act on: a refusal by the gateway
(``GatewayError``, or a gRPC status from a remote one, with its reason and
field violations), a file or value that is wrong (``OSError``, ``ValueError``
— file problems, bad notes, bundles that do not verify derive from it), and
a gateway command run where only the agency side is installed. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.domain.errors import GatewayError

F = TypeVar("F", bound=Callable[..., Any])

#: Import names of the packages of the ``server`` extra (pyproject.toml): an
#: agency's install lacks them, and the gateway's commands say so.
SERVER_PACKAGES = frozenset(
    {"sqlalchemy", "alembic", "psycopg", "pika", "grpc_health", "prometheus_client"}
)
SERVER_INSTALL = "pip install 'silian-gateway[server]'"


def describe_rpc_error(err: grpc.RpcError) -> str:
    """One readable line: status, reason and every field violation."""
    status = rpc_status.from_call(err)
    text = f"{err.code().name}: {err.details()}"
    for detail in status.details if status else []:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            text += f" [{info.reason}]"
        elif detail.Unpack(bad):
            text += "".join(f"\n  {v.field}: {v.description}" for v in bad.field_violations)
    return text


#: Said when a connection ends before any answer: what a gateway requiring TLS
#: (or a client certificate) does to a client without them.
TLS_HINT = (
    " — if the gateway requires TLS, give the CA bundle of its certificate (--ca-bundle, or "
    "the ca_bundle setting) and, under mTLS, this agency's certificate and key "
    "(--client-cert and --client-key, or client_cert and client_key)"
)
_CONNECTION_CLOSED = ("socket closed", "handshake", "ssl")


def tls_hint(err: grpc.RpcError) -> str:
    """``TLS_HINT`` when ``err`` looks like a connection a TLS gateway closed, else ""."""
    details = (err.details() or "").lower()
    closed = any(sign in details for sign in _CONNECTION_CLOSED)
    return TLS_HINT if err.code() == grpc.StatusCode.UNAVAILABLE and closed else ""


def server_missing(err: ModuleNotFoundError) -> str | None:
    """What to tell someone running a gateway command where only the agency side
    is installed; None if ``err`` is about something else."""
    if (err.name or "").split(".")[0] not in SERVER_PACKAGES:
        return None
    return f"{err.name} is not installed, and this is a gateway command: {SERVER_INSTALL}"


def one_line(err: BaseException) -> str | None:
    """The one line that reports ``err``; None if it is not an expected failure."""
    if isinstance(err, ModuleNotFoundError):
        return server_missing(err)
    if isinstance(err, GatewayError):
        return f"{err.reason}: {err.message}"
    if isinstance(err, grpc.RpcError):
        return f"gateway: {describe_rpc_error(err)}{tls_hint(err)}"
    if isinstance(err, OSError | ValueError):
        return str(err)
    return None


def one_line_errors(fn: F) -> F:
    """Decorate a command so that expected failures end it with one line."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as err:
            line = one_line(err)
            if line is None:
                raise
            raise click.ClickException(line) from None

    return wrapper  # type: ignore[return-value]
