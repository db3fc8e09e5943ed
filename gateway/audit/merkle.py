"""RFC 9162 §2.1 Merkle trees: hashes, proofs and their verification.

Pure functions, no database: the gateway proves from stored subtree hashes
(``gateway.audit.tree``), ``silian audit verify`` recomputes offline, and both
use what is here.

- A leaf hash is SHA-256(0x00 ‖ entry), an interior node SHA-256(0x01 ‖ left ‖ right);
  a tree of n > 1 leaves splits at k, the largest power of two smaller than n
  (§2.1.1). The empty tree's hash is SHA-256 of nothing.
- Every node of a tree of size n covers a range [start, end) of leaves, with
  ``start`` a multiple of a power of two 2^h ≥ end - start. It is either a
  *perfect* subtree (end - start = 2^h), which never changes once its leaves
  exist and is addressed as (level h, index start / 2^h), or a node on the
  right edge of the tree, whose hash folds the perfect subtrees that decompose
  its range. So any proof needs only perfect subtree hashes: O(log n) of them.
- Proofs are lists of hashes ordered as RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1
  (PROOF) define them; ``verify_inclusion`` and ``verify_consistency`` are the
  algorithms of §2.1.3.2 and §2.1.4.2, step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: A range [start, end) of leaf indexes.
Range = tuple[int, int]
#: A perfect subtree: (level, index); it covers [index·2^level, (index+1)·2^level).
Node = tuple[int, int]


class ProofError(ValueError):
    """A proof does not verify, or was asked for with impossible sizes."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 ‖ entry) (§2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right) (§2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """k: the largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (the tree hash of §2.1.1)."""
    return fold(compact(leaves))


def compact(leaves: Iterable[bytes]) -> list[bytes]:
    """The hashes of the perfect subtrees that decompose the whole list, largest first."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.hashes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from the perfect subtrees that decompose it, largest
    first: H(h0, H(h1, … H(hk-1, hk))). The empty sequence folds to EMPTY_ROOT."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def perfect_subtrees(start: int, end: int) -> list[Node]:
    """The perfect subtrees that decompose the node [start, end), largest first."""
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The nodes whose hashes make PATH(index, D[size]), in proof order (§2.1.3.1)."""
    check_inclusion_request(index, size)
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The nodes whose hashes make PROOF(first, D[second]), in proof order (§2.1.4.1)."""
    check_consistency_request(first, second)
    ranges: list[Range] = []
    start, end, complete = 0, second, True
    m = first
    while m != end - start:
        k = split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def check_inclusion_request(index: int, size: int) -> None:
    """ProofError unless 0 ≤ index < size."""
    if size < 1:
        raise ProofError(f"tree size must be at least 1, got {size}")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")


def check_consistency_request(first: int, second: int) -> None:
    """ProofError unless 1 ≤ first ≤ second."""
    if first < 1:
        raise ProofError(f"the first tree size must be at least 1, got {first}")
    if first > second:
        raise ProofError(f"the first tree size {first} is larger than the second {second}")


def prove(ranges: Sequence[Range], subtree: Callable[[Node], bytes]) -> list[bytes]:
    """The hashes of ``ranges``, each folded from its perfect subtrees' hashes."""
    return [fold([subtree(node) for node in perfect_subtrees(*r)]) for r in ranges]


def needed_nodes(ranges: Iterable[Range]) -> set[Node]:
    """Every perfect subtree that ``prove`` will ask for."""
    return {node for r in ranges for node in perfect_subtrees(*r)}


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[len(leaves)]) over a list of leaf hashes."""
    return prove(inclusion_ranges(index, len(leaves)), _subtrees_of(leaves))


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(first, D[len(leaves)]) over a list of leaf hashes."""
    return prove(consistency_ranges(first, len(leaves)), _subtrees_of(leaves))


def _subtrees_of(leaves: Sequence[bytes]) -> Callable[[Node], bytes]:
    def subtree(node: Node) -> bytes:
        level, index = node
        return root(leaves[index << level : (index + 1) << level])

    return subtree


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """RFC 9162 §2.1.3.2: ProofError unless ``proof`` shows the leaf hash ``leaf``
    at ``index`` in the tree of ``size`` leaves whose hash is ``root_hash``."""
    if index >= size or index < 0:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    if r != root_hash:
        raise ProofError("the inclusion proof does not lead to the root hash")


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: ProofError unless ``proof`` shows that the tree of
    ``first`` leaves with hash ``first_hash`` is a prefix of the tree of
    ``second`` leaves with hash ``second_hash``.

    The RFC's algorithm is for 0 < first < second; as its §2.1.4 says, a tree
    is consistent with itself, so first == second needs an empty proof and
    equal hashes.
    """
    check_consistency_request(first, second)
    if first == second:
        if proof:
            raise ProofError("a tree is consistent with itself by an empty proof")
        if first_hash != second_hash:
            raise ProofError("two trees of the same size have different root hashes")
        return
    path = list(proof)
    if not path:
        raise ProofError("the consistency proof is empty")
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if fr != first_hash:
        raise ProofError("the consistency proof does not lead to the first root hash")
    if sr != second_hash:
        raise ProofError("the consistency proof does not lead to the second root hash")


@dataclass
class Frontier:
    """A tree being appended to, kept as its perfect subtrees (largest first):
    O(log n) hashes give its root and the subtree hashes each append completes."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    @classmethod
    def load(cls, size: int, packed: bytes) -> Frontier:
        """The frontier of a tree of ``size`` leaves from ``pack()``'s bytes."""
        count = size.bit_count()
        if len(packed) != count * HASH_SIZE:
            raise ValueError(f"a tree of size {size} needs {count} frontier hashes")
        return cls(size, [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)])

    def pack(self) -> bytes:
        return b"".join(self.hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns the perfect subtrees (level ≥ 1, index, hash) it completed."""
        index, completed = self.size, []
        node, level, n = leaf, 0, index
        while n & 1:
            node = node_hash(self.hashes.pop(), node)
            level, n = level + 1, n >> 1
            completed.append((level, index >> level, node))
        self.hashes.append(node)
        self.size += 1
        return completed

    def root(self) -> bytes:
        return fold(self.hashes)
