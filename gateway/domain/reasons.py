"""Every reason the gateway gives for a refusal: its error class (hence its gRPC
status, see gateway.rpc.errors), what it means and whether to retry.

One reason, one class, one status, wherever it is raised (a test scans the code
for reasons missing here). The README's table is generated from this one
(``python -m gateway.rpc.reason_table --write``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.errors import (
    Aborted,
    Conflict,
    FailedPrecondition,
    GatewayError,
    Internal,
    InvalidMessage,
    NotFound,
    Overloaded,
    PermissionDenied,
    TooLarge,
    Unauthenticated,
    Unavailable,
)

#: Retry advice: the same request later, after a change, or never.
RETRY_SAME = "yes, the same request (same `mid`) later"
RETRY_AFTER_WAIT = "yes, after the `RetryInfo` delay, same `mid`"
RETRY_NEW_TOKEN = "with a new token"
RETRY_AFTER_FIX = "after fixing what it names"
RETRY_LATER_STATE = "once the state it names has changed"
NEVER = "no"


@dataclass(frozen=True)
class Reason:
    """What a refusal reason means and whether the caller should retry."""

    error: type[GatewayError]
    meaning: str
    retry: str


REASONS: dict[str, Reason] = {
    # --- bearer tokens (every RPC) -------------------------------------------
    "MISSING_TOKEN": Reason(
        Unauthenticated, "the call carries no `authorization: Bearer` token", RETRY_NEW_TOKEN
    ),
    "MALFORMED_TOKEN": Reason(
        Unauthenticated,
        "the token is not a JWT with `alg=EdDSA`, `kid`, `iss`, integer `iat` and `exp`",
        RETRY_NEW_TOKEN,
    ),
    "BAD_TOKEN_SIGNATURE": Reason(
        Unauthenticated, "the token does not verify with the key its `kid` names", RETRY_NEW_TOKEN
    ),
    "WRONG_AUDIENCE": Reason(Unauthenticated, "`aud` is not this gateway's id", RETRY_NEW_TOKEN),
    "EXPIRED_TOKEN": Reason(
        Unauthenticated, "`exp` is past (beyond `clock_skew_seconds`)", RETRY_NEW_TOKEN
    ),
    "TOKEN_NOT_YET_VALID": Reason(
        Unauthenticated,
        "`iat` or `nbf` is ahead of the gateway's clock by more than `clock_skew_seconds` "
        "(check the sender's clock)",
        RETRY_NEW_TOKEN,
    ),
    "TOKEN_LIFETIME_TOO_LONG": Reason(
        Unauthenticated,
        "`exp` − `iat` exceeds `max_token_lifetime_seconds`",
        RETRY_NEW_TOKEN,
    ),
    "CERTIFICATE_MISMATCH": Reason(
        Unauthenticated, "the mTLS client certificate names another principal", RETRY_AFTER_FIX
    ),
    # --- who signed (token or message signature alike) ------------------------
    "UNKNOWN_AGENCY": Reason(
        Unauthenticated, "`iss` is not a registered principal", RETRY_AFTER_FIX
    ),
    "UNKNOWN_KEY": Reason(
        Unauthenticated,
        "the `kid` (of a token or a message signature) is not a key of `iss`",
        RETRY_AFTER_FIX,
    ),
    "REVOKED_KEY": Reason(
        Unauthenticated,
        "the `kid` (of a token or a message signature) was revoked",
        "with a current key",
    ),
    "ROLE_NOT_ALLOWED": Reason(
        PermissionDenied, "the caller's role may not call this service", NEVER
    ),
    # --- the envelope and its signature --------------------------------------
    "UNPARSEABLE_REQUEST": Reason(
        InvalidMessage, "the request bytes are not the RPC's protobuf message", NEVER
    ),
    "MISSING_FIELD": Reason(
        InvalidMessage, "a required field is empty (named in the field violations)", NEVER
    ),
    "BAD_MID": Reason(InvalidMessage, "`mid` is not a UUID", NEVER),
    "MESSAGE_TOO_LARGE": Reason(TooLarge, "the payload exceeds `max_message_bytes`", NEVER),
    "SENDER_NOT_CALLER": Reason(
        PermissionDenied, "the envelope's `sender` is not the token's `iss`", NEVER
    ),
    "UNKNOWN_KIND": Reason(InvalidMessage, "`kind` is not a known message kind", NEVER),
    "KIND_NOT_ALLOWED": Reason(
        PermissionDenied, "the policy does not let this sender send this kind", NEVER
    ),
    "MALFORMED_SIGNATURE": Reason(
        InvalidMessage,
        "the signature is not a compact JWS with `alg=EdDSA`, `kid`, string claims "
        "`mid`, `kind`, `iss`, `sha256` and an integer `iat`",
        NEVER,
    ),
    "SENDER_MISMATCH": Reason(
        InvalidMessage, "the signature's `iss` differs from the envelope's `sender`", NEVER
    ),
    "CLAIMS_MISMATCH": Reason(
        InvalidMessage, "the signed `mid` or `kind` differs from the envelope's", NEVER
    ),
    "BAD_SIGNATURE": Reason(
        InvalidMessage, "the signature does not verify with the key its `kid` names", NEVER
    ),
    "DIGEST_MISMATCH": Reason(
        InvalidMessage, "the payload's SHA-256 is not the signed `sha256`", NEVER
    ),
    "IAT_OUT_OF_RANGE": Reason(
        InvalidMessage,
        "a new message's `iat` is more than `clock_skew_seconds` from the gateway's clock "
        "(a retry of an accepted message is answered whatever its `iat`)",
        "re-signed with a current `iat`",
    ),
    "MID_REUSED": Reason(Conflict, "this `mid` was already used for another payload", NEVER),
    # --- the payload ---------------------------------------------------------
    "UNPARSEABLE_PAYLOAD": Reason(
        InvalidMessage, "the payload is not the protobuf message of its kind", NEVER
    ),
    "PAYLOAD_INVALID": Reason(
        InvalidMessage,
        'the payload breaks a rule of its kind (see the field violations and "Payload rules")',
        NEVER,
    ),
    "DELIVERY_HELD_ELSEWHERE": Reason(
        FailedPrecondition,
        "an Acknowledge reached a gateway process that does not hold the delivery's "
        "stream (behind a per-call load balancer); nothing was settled — use Subscribe",
        RETRY_AFTER_FIX,
    ),
    "INBOX_CONNECTION_LOST": Reason(
        Aborted,
        "the stream holding the deliveries lost its RabbitMQ connection, or RabbitMQ did not "
        "confirm the settlement in time; they come back redelivered (deduplicate by mid)",
        NEVER,
    ),
    "TOO_MANY_IDS": Reason(
        InvalidMessage,
        "an Acknowledge names more delivery ids than one call may settle",
        RETRY_AFTER_FIX,
    ),
    "UNKNOWN_FIELDS": Reason(
        InvalidMessage,
        "the payload carries fields `silian.v1` does not declare (numbers listed); "
        "the contract is the `.proto`",
        RETRY_AFTER_FIX,
    ),
    # --- linkage rules -------------------------------------------------------
    "SUBJECT_NOT_ON_ROSTER": Reason(
        NotFound,
        "a verification result names nobody under community corrections that day",
        NEVER,
    ),
    "UNKNOWN_PSEUDONYM": Reason(
        NotFound, "a service record names a pseudonym never referred to the sender", NEVER
    ),
    "RECORD_EXISTS": Reason(
        Conflict, "the `record_id` was already submitted in another message", NEVER
    ),
    "UNKNOWN_FINDING": Reason(
        FailedPrecondition, "no finding with this id was issued through the gateway", NEVER
    ),
    "FINDING_EXISTS": Reason(
        FailedPrecondition, "a finding with this id was already issued", NEVER
    ),
    "FINDING_OUT_OF_ORDER": Reason(
        FailedPrecondition, "the finding's state does not allow this step", RETRY_LATER_STATE
    ),
    # --- alert disposal (闭环) ------------------------------------------------
    "UNKNOWN_ALERT": Reason(
        FailedPrecondition, "a disposition names an alert the gateway never raised", NEVER
    ),
    "ALERT_MISMATCH": Reason(
        FailedPrecondition,
        "a disposition's alert type or unit differs from the alert it names",
        RETRY_AFTER_FIX,
    ),
    "ALERT_ALREADY_CLOSED": Reason(
        FailedPrecondition, "the alert is closed; reopen it before another step", NEVER
    ),
    "DISPOSITION_OUT_OF_ORDER": Reason(
        FailedPrecondition,
        "the alert's state does not allow this step (see the lifecycle)",
        RETRY_LATER_STATE,
    ),
    "DISPOSITION_BEFORE_PREVIOUS_STEP": Reason(
        FailedPrecondition, "the step's time is before the alert's previous step", RETRY_AFTER_FIX
    ),
    "CAMPAIGN_EXISTS": Reason(
        FailedPrecondition, "a verification request with this id was already sent", NEVER
    ),
    # --- capacity and dependencies -------------------------------------------
    "OVERLOADED": Reason(Overloaded, "the gateway is at capacity", RETRY_AFTER_WAIT),
    "RATE_LIMITED": Reason(
        Overloaded, "the sender exceeds its `rate_limits` share", RETRY_AFTER_WAIT
    ),
    "TOO_MANY_STREAMS": Reason(
        Overloaded,
        "the agency has `max_receive_streams` inbox streams (Receive, Subscribe) open already",
        RETRY_AFTER_WAIT,
    ),
    "TOO_MANY_FAILED_AUTHENTICATIONS": Reason(
        Overloaded,
        "calls from this address failed authentication too often this minute",
        RETRY_AFTER_WAIT,
    ),
    "STORE_FAILED": Reason(
        Internal,
        "this message could not be stored even on its own (the others of its group "
        "were); the log line with the correlation id says why",
        RETRY_SAME,
    ),
    "DATABASE_UNAVAILABLE": Reason(Unavailable, "the database cannot be reached", RETRY_SAME),
    "BROKER_UNAVAILABLE": Reason(Unavailable, "RabbitMQ cannot be reached", RETRY_SAME),
    "BROKER_TIMEOUT": Reason(Unavailable, "RabbitMQ did not answer in time", RETRY_SAME),
    "BROKER_NOT_FOUND": Reason(
        NotFound, "a queue or exchange is missing (run `silian broker setup`)", RETRY_AFTER_FIX
    ),
    "BROKER_PRECONDITION_FAILED": Reason(
        FailedPrecondition,
        "a queue or exchange exists with other arguments",
        RETRY_AFTER_FIX,
    ),
    # --- inbox ---------------------------------------------------------------
    "UNKNOWN_MESSAGE": Reason(NotFound, "the caller sent no message with this `mid`", NEVER),
    # --- auditors --------------------------------------------------------------
    "BAD_AUDIT_REQUEST": Reason(
        InvalidMessage, "a tree size or leaf index out of range", RETRY_AFTER_FIX
    ),
    "NO_CHECKPOINT": Reason(NotFound, "no audit checkpoint has been made yet", RETRY_SAME),
    "NOT_YOUR_ENTRY": Reason(
        PermissionDenied, "a partner asked to prove an audit entry of another actor", NEVER
    ),
    "UNKNOWN_SUBJECT": Reason(NotFound, "no recipient knows anyone by that pseudonym", NEVER),
    "AUDIT_TREE_DAMAGED": Reason(
        FailedPrecondition,
        "an audit entry or tree node is missing from the database (tell the bureau)",
        NEVER,
    ),
    # --- operators (`silian agency …`) ---------------------------------------
    "AGENCY_EXISTS": Reason(Conflict, "a principal with this id is registered", NEVER),
    "AGENCY_NOT_REGISTERED": Reason(NotFound, "no principal with this id", RETRY_AFTER_FIX),
    "KEY_EXISTS": Reason(Conflict, "the key is registered already", NEVER),
    "KEY_NOT_REGISTERED": Reason(NotFound, "the principal has no key with this id", NEVER),
    # --- starting the gateway (`silian serve`) --------------------------------
    "BAD_WORKERS": Reason(FailedPrecondition, "`--workers` is below 1", RETRY_AFTER_FIX),
    "WORKERS_NEED_POSTGRESQL": Reason(
        FailedPrecondition, "`--workers` on SQLite, which serves one process", RETRY_AFTER_FIX
    ),
    "BAD_LISTEN": Reason(
        FailedPrecondition, "`--workers` with port 0 (a fixed port is shared)", RETRY_AFTER_FIX
    ),
    "SQLITE_IN_USE": Reason(
        FailedPrecondition,
        "another gateway process serves this SQLite file already (replicas need PostgreSQL)",
        RETRY_LATER_STATE,
    ),
}
