"""silian.v1.Audit over grpc.aio: authenticate, translate, delegate to AuditService.

Auditors may call everything. A partner agency may call GetCheckpoint, and
GetInclusionProof of an entry it is the actor of; anything else is refused
with PERMISSION_DENIED (and audited as a rejection by the authentication).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.audit import log as audit_log
from gateway.audit.service import AuditService, Entry, EntryFilter, Step, SubjectAccess
from gateway.bootstrap import Gateway, subject_keys
from gateway.domain.errors import GatewayError
from gateway.proto.silian.v1 import audit_pb2, audit_pb2_grpc
from gateway.rpc.common import (
    BAD_REQUEST,
    UNDECODABLE,
    TolerantRegistration,
    certificate_agency,
)
from gateway.rpc.errors import to_grpc_status
from gateway.security.tokens import bearer_from_metadata
from gateway.service.exchange import ExchangeService

log = structlog.get_logger(__name__)
T = TypeVar("T")

AUDITORS = ("auditor",)
AUDITORS_AND_AGENCIES = ("auditor", "agency")


class AuditServicer(audit_pb2_grpc.AuditServicer):
    def __init__(self, exchange: ExchangeService, audit: AuditService, executor: Executor) -> None:
        self._exchange = exchange
        self._audit = audit
        self._executor = executor

    @classmethod
    def for_gateway(cls, gateway: Gateway, executor: Executor) -> AuditServicer:
        audit = AuditService(gateway.store, gateway.policy, subject_keys(gateway.settings))
        return cls(gateway.service, audit, executor)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _caller(
        self, request: object, context: grpc.aio.ServicerContext, roles: Sequence[str]
    ) -> str:
        if request is UNDECODABLE:
            raise BAD_REQUEST
        token = bearer_from_metadata(context.invocation_metadata() or ())
        return await self._run(
            self._exchange.authenticate, token, certificate_agency(context), roles
        )

    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetCheckpointResponse:
        try:
            caller = await self._caller(request, context, AUDITORS_AND_AGENCIES)
            found = await self._run(self._audit.checkpoint)
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        log.info("audit.checkpoint_read", agency=caller, size=found.size)
        checkpoint = audit_pb2.Checkpoint(
            origin=found.note.split("\n", 1)[0],
            tree_size=found.size,
            root_hash=found.root_hash,
            time=_timestamp(found.created_at),
            note=found.note,
        )
        return audit_pb2.GetCheckpointResponse(checkpoint=checkpoint)

    async def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetInclusionProofResponse:
        try:
            caller = await self._caller(request, context, AUDITORS_AND_AGENCIES)
            principal = self._audit.policy.principal(caller)
            restricted = None if principal and principal.role == "auditor" else caller
            entry, hashes = await self._run(
                self._audit.inclusion_proof, request.leaf_index, request.tree_size, restricted
            )
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        log.info("audit.inclusion_proved", agency=caller, index=request.leaf_index)
        return audit_pb2.GetInclusionProofResponse(
            leaf_index=request.leaf_index, tree_size=request.tree_size, entry=entry, hashes=hashes
        )

    async def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetConsistencyProofResponse:
        try:
            caller = await self._caller(request, context, AUDITORS)
            hashes = await self._run(
                self._audit.consistency_proof, request.first_tree_size, request.second_tree_size
            )
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        log.info("audit.consistency_proved", agency=caller)
        return audit_pb2.GetConsistencyProofResponse(
            first_tree_size=request.first_tree_size,
            second_tree_size=request.second_tree_size,
            hashes=hashes,
        )

    async def ListEntries(
        self, request: audit_pb2.ListEntriesRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListEntriesResponse:
        try:
            caller = await self._caller(request, context, AUDITORS)
            where = EntryFilter(
                since=request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None,
                until=request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None,
                actor=request.actor,
                kind=request.kind,
                mid=request.mid,
                event=request.event,
            )
            entries, token = await self._run(
                self._audit.entries, where, request.page_size, request.page_token
            )
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        log.info("audit.entries_listed", agency=caller, count=len(entries))
        return audit_pb2.ListEntriesResponse(
            entries=[_entry(e) for e in entries], next_page_token=token
        )

    async def SubjectAccessLog(
        self, request: audit_pb2.SubjectAccessLogRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.SubjectAccessLogResponse:
        try:
            caller = await self._caller(request, context, AUDITORS)
            accesses = await self._run(self._audit.subject_access_log, request.subject, caller)
        except GatewayError as err:
            await context.abort_with_status(to_grpc_status(err))
        log.info("audit.subject_queried", agency=caller, accesses=len(accesses))
        return audit_pb2.SubjectAccessLogResponse(accesses=[_access(a) for a in accesses])


def add_to_server(servicer: AuditServicer, server: grpc.aio.Server) -> None:
    """Register ``servicer``; undecodable requests get INVALID_ARGUMENT, as on Exchange."""
    audit_pb2_grpc.add_AuditServicer_to_server(servicer, TolerantRegistration(server))


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _entry(entry: Entry) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        index=entry.index,
        time=_timestamp(entry.time),
        event=entry.event,
        actor=entry.actor,
        mid=entry.mid,
        kind=entry.kind,
        detail={key: str(value) for key, value in entry.detail.items()},
        entry=entry.entry,
    )


def _reference(step: Step | None) -> audit_pb2.AuditReference | None:
    if step is None:
        return None
    return audit_pb2.AuditReference(index=step.index, time=_timestamp(step.time))


def _access(access: SubjectAccess) -> audit_pb2.SubjectAccess:
    return audit_pb2.SubjectAccess(
        mid=access.mid,
        sender=access.sender,
        kind=access.kind,
        recipient=access.recipient,
        route_id=access.route_id,
        purpose=access.purpose,
        view=access.view,
        policy_sha256=access.policy_sha256,
        routed=_reference(access.steps.get(audit_log.ROUTED)),
        published=_reference(access.steps.get(audit_log.PUBLISHED)),
        delivered=_reference(access.steps.get(audit_log.DELIVERED)),
        acknowledged=_reference(access.steps.get(audit_log.ACKNOWLEDGED)),
    )
