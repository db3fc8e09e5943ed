"""silian.v1.Audit over grpc.aio: translate, delegate to AuditService.

Auditors may call everything. A partner agency may call GetCheckpoint, and
GetInclusionProof of an entry it is the actor of; anything else is refused
with PERMISSION_DENIED by the boundary's authentication (and audited as a
rejection), which also maps what is raised here to a status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.audit.service import AuditService, Entry, EntryFilter, Step, SubjectAccess
from gateway.bootstrap import Gateway, subject_keys
from gateway.domain import events
from gateway.proto.silian.v1 import audit_pb2, audit_pb2_grpc
from gateway.rpc.boundary import Boundary, caller

log = structlog.get_logger(__name__)
T = TypeVar("T")


class AuditServicer(audit_pb2_grpc.AuditServicer):
    def __init__(self, audit: AuditService, executor: Executor) -> None:
        self._audit = audit
        self._executor = executor

    @classmethod
    def for_gateway(cls, gateway: Gateway, executor: Executor) -> AuditServicer:
        audit = AuditService(gateway.store, gateway.policy, subject_keys(gateway.settings))
        return cls(audit, executor)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetCheckpointResponse:
        agency = caller()
        found = await self._run(self._audit.checkpoint)
        log.info("audit.checkpoint_read", agency=agency, size=found.size)
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
        agency = caller()
        principal = self._audit.policy.principal(agency)
        restricted = None if principal and principal.role == "auditor" else agency
        entry, hashes = await self._run(
            self._audit.inclusion_proof, request.leaf_index, request.tree_size, restricted
        )
        log.info("audit.inclusion_proved", agency=agency, index=request.leaf_index)
        return audit_pb2.GetInclusionProofResponse(
            leaf_index=request.leaf_index, tree_size=request.tree_size, entry=entry, hashes=hashes
        )

    async def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetConsistencyProofResponse:
        agency = caller()
        hashes = await self._run(
            self._audit.consistency_proof, request.first_tree_size, request.second_tree_size
        )
        log.info("audit.consistency_proved", agency=agency)
        return audit_pb2.GetConsistencyProofResponse(
            first_tree_size=request.first_tree_size,
            second_tree_size=request.second_tree_size,
            hashes=hashes,
        )

    async def ListEntries(
        self, request: audit_pb2.ListEntriesRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListEntriesResponse:
        agency = caller()
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
        log.info("audit.entries_listed", agency=agency, count=len(entries))
        return audit_pb2.ListEntriesResponse(
            entries=[_entry(e) for e in entries], next_page_token=token
        )

    async def SubjectAccessLog(
        self, request: audit_pb2.SubjectAccessLogRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.SubjectAccessLogResponse:
        agency = caller()
        accesses = await self._run(self._audit.subject_access_log, request.subject, agency)
        log.info("audit.subject_queried", agency=agency, accesses=len(accesses))
        return audit_pb2.SubjectAccessLogResponse(accesses=[_access(a) for a in accesses])


def add_to_server(servicer: AuditServicer, server: grpc.aio.Server, boundary: Boundary) -> None:
    boundary.register(audit_pb2_grpc.add_AuditServicer_to_server, servicer, server)


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
        routed=_reference(access.steps.get(events.ROUTED)),
        published=_reference(access.steps.get(events.PUBLISHED)),
        delivered=_reference(access.steps.get(events.DELIVERED)),
        acknowledged=_reference(access.steps.get(events.ACKNOWLEDGED)),
    )
