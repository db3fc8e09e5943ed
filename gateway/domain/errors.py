"""Domain errors. Each carries a stable machine-readable reason and, where a
field is at fault, field violations. gateway.rpc.errors maps them to gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field

#: At most this many field violations are named in an answer, a log line or an
#: audit entry (gRPC carries the details in metadata, which is small).
MAX_LISTED_VIOLATIONS = 20


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


def summary(violations: list[FieldViolation]) -> str:
    """``field: description; …`` of the first MAX_LISTED_VIOLATIONS, and how many more."""
    listed = "; ".join(f"{v.field}: {v.description}" for v in violations[:MAX_LISTED_VIOLATIONS])
    more = len(violations) - MAX_LISTED_VIOLATIONS
    return f"{listed}; and {more} more" if more > 0 else listed


@dataclass
class GatewayError(Exception):
    """Base of every error the gateway reports to a caller."""

    reason: str
    message: str
    violations: list[FieldViolation] = field(default_factory=list)
    #: Set once the refusal is in the audit log, so it is recorded once.
    audited: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class Unauthenticated(GatewayError):
    """The caller's token is missing, malformed, expired or not ours."""


class PermissionDenied(GatewayError):
    """The caller is known but may not do this."""


class InvalidMessage(GatewayError):
    """The envelope, its signature or its payload is wrong."""


class Conflict(GatewayError):
    """The message id was already used with a different payload."""


class NotFound(GatewayError):
    """The thing asked about does not exist (or is not the caller's)."""


class FailedPrecondition(GatewayError):
    """The request is valid but the state does not allow it."""


class Aborted(GatewayError):
    """The request was cut short by a failure midway (e.g. a stream's broker
    connection dropped while settling); what did not happen is said in the
    message, and the caller may retry on a new stream."""


class TooLarge(GatewayError):
    """The message is larger than the configured limit."""


class Internal(GatewayError):
    """The gateway failed on this request (a bug, or a value its database
    refused); the message names a correlation id that the log line names too."""


class Unavailable(GatewayError):
    """A dependency (database, broker) is down; the caller may retry."""


@dataclass
class Overloaded(GatewayError):
    """The gateway (or the caller's rate limit) is at capacity; retry later."""

    retry_after_seconds: float = 0.5
