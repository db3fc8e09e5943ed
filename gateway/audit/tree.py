"""The audit log's Merkle tree as stored: head, roots and proofs from the
subtree hashes ``gateway.audit.log.append`` writes.

Every function reads in the caller's session and costs O(log n) row reads
(two queries for a proof: the head, then the hashes): the tree is never recomputed from its leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from gateway.audit import merkle
from gateway.audit.merkle import Frontier, Node, ProofError, Range
from gateway.store.models import AuditEntry, AuditHead, AuditNode


class MissingNode(ValueError):
    """A subtree hash the proof needs is not stored (the tree tables were altered)."""


class BeyondLog(ProofError):
    """A tree size larger than the log."""


def head(session: Session) -> Frontier:
    """The log's size and frontier as committed (or as this transaction left them)."""
    row = session.execute(select(AuditHead.size, AuditHead.frontier).where(AuditHead.id == 1)).one()
    return Frontier.load(row.size, row.frontier)


def root_at(session: Session, size: int) -> bytes:
    """The root hash of the first ``size`` entries; ProofError beyond the log's size."""
    if size == 0:
        return merkle.EMPTY_ROOT
    _check_size(session, size)
    return _hashes(session, [(0, size)])[0]


def inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]); ProofError unless 0 ≤ index < size ≤ the log's size."""
    _check_size(session, size)
    return _hashes(session, merkle.inclusion_ranges(index, size))


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]); ProofError unless 1 ≤ first ≤ second ≤ the log's size."""
    merkle.check_consistency_request(first, second)
    _check_size(session, second)
    return _hashes(session, merkle.consistency_ranges(first, second))


def _check_size(session: Session, size: int) -> None:
    logged = head(session).size
    if size > logged:
        raise BeyondLog(f"is larger than the log ({logged} entries)")


def _hashes(session: Session, ranges: list[Range]) -> list[bytes]:
    stored = subtrees(session, merkle.needed_nodes(ranges))
    return merkle.prove(ranges, stored.__getitem__)


def subtrees(session: Session, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of perfect subtrees; MissingNode if one is absent."""
    wanted = {AuditNode.key(level, index): (level, index) for level, index in nodes}
    leaves = sorted(key for key, (level, _) in wanted.items() if level == 0)
    inner = sorted(key for key, (level, _) in wanted.items() if level > 0)
    queries: list[Any] = []  # selects of (node key, hash), each of one fixed shape
    if leaves:
        queries.append(
            select(AuditEntry.idx, AuditEntry.leaf_hash).where(AuditEntry.idx.in_(leaves))
        )
    if inner:
        queries.append(select(AuditNode.node, AuditNode.hash).where(AuditNode.node.in_(inner)))
    found: dict[Node, bytes] = {}
    if queries:
        statement: Any = union_all(*queries) if len(queries) > 1 else queries[0]
        for key, value in session.execute(statement):
            found[wanted[key]] = value
    missing = set(wanted.values()) - set(found)
    if missing:
        level, index = min(missing)
        raise MissingNode(f"the stored audit tree lacks subtree {index} of level {level}")
    return found
