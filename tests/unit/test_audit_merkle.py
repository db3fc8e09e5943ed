"""RFC 9162 §2.1 Merkle trees: known answers, the RFC's own recursive
definitions as the reference, an independent implementation (pymerkle), and
property tests that proofs verify and that any single-bit change breaks them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from gateway.audit import merkle
from gateway.audit.merkle import Frontier, ProofError

# The RFC 6962 / RFC 9162 test vectors of the Certificate Transparency reference
# implementations: eight leaves and the root of each prefix.
LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]


# --- the RFC's definitions, transcribed literally (§2.1.1, §2.1.3.1, §2.1.4.1) ---


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = merkle.split(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = merkle.split(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = merkle.split(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


# --- known answers ---------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert Frontier().root() == merkle.EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_reference_vectors(size: int) -> None:
    assert merkle.root(HASHES[:size]).hex() == ROOTS[size - 1]


def test_reference_inclusion_proof_of_leaf_5_in_8() -> None:
    proof = merkle.inclusion_proof(5, HASHES)
    assert [h.hex() for h in proof] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    merkle.verify_inclusion(5, 8, HASHES[5], proof, bytes.fromhex(ROOTS[7]))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(4, 8, HASHES[5], proof, bytes.fromhex(ROOTS[7]))


def test_reference_consistency_proofs() -> None:
    assert [h.hex() for h in merkle.consistency_proof(6, HASHES)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in merkle.consistency_proof(2, HASHES[:5])] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]
    with pytest.raises(ProofError):
        merkle.verify_consistency(
            6,
            8,
            bytes.fromhex(ROOTS[4]),
            bytes.fromhex(ROOTS[7]),
            merkle.consistency_proof(6, HASHES),
        )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: merkle.inclusion_ranges(3, 3), "leaf index 3 is not in a tree of size 3"),
        (lambda: merkle.inclusion_ranges(0, 0), "tree size must be at least 1"),
        (lambda: merkle.consistency_ranges(5, 4), "first tree size 5 is larger than the second 4"),
        (lambda: merkle.consistency_ranges(0, 4), "first tree size must be at least 1"),
    ],
)
def test_impossible_proof_requests_are_refused(call: object, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        call()  # type: ignore[operator]


def test_a_tree_is_consistent_with_itself_by_an_empty_proof() -> None:
    root = merkle.root(HASHES[:5])
    assert merkle.consistency_proof(5, HASHES[:5]) == []
    merkle.verify_consistency(5, 5, root, root, [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(5, 5, root, merkle.root(HASHES[:4]), [])


# --- properties ------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=70)


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), size=sizes)
def test_every_proof_matches_the_rfc_definition_and_verifies(
    data: st.DataObject, size: int
) -> None:
    leaves = _leaves(size)
    d = [i.to_bytes(4, "big") for i in range(size)]
    root = merkle.root(leaves)
    assert root == mth(d)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, leaves)
    assert proof == path(index, d)
    merkle.verify_inclusion(index, size, leaves[index], proof, root)
    first = data.draw(st.integers(1, size))
    proof = merkle.consistency_proof(first, leaves)
    assert proof == subproof(first, d, True)
    merkle.verify_consistency(first, size, merkle.root(leaves[:first]), root, proof)


def _flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


LOG = _leaves(256)


def _verifies(verify: Callable[..., None], *args: object) -> bool:
    try:
        verify(*args)
    except ProofError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(data=st.data(), size=st.integers(min_value=2, max_value=70))
def test_any_single_bit_change_breaks_an_inclusion_proof(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(0, size - 1))
    leaf, root, proof = (
        LOG[index],
        merkle.root(LOG[:size]),
        merkle.inclusion_proof(index, LOG[:size]),
    )
    bit = data.draw(st.integers(0, 10_000))
    target = data.draw(st.sampled_from(["proof", "root", "leaf", "index"]))
    if target == "proof":
        position = bit % len(proof)
        proof = [*proof[:position], _flip(proof[position], bit), *proof[position + 1 :]]
    elif target == "root":
        root = _flip(root, bit)
    elif target == "leaf":
        leaf = _flip(leaf, bit)
    else:
        index ^= 1 << (bit % 8)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, proof, root)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), size=st.integers(min_value=2, max_value=70))
def test_an_inclusion_proof_holds_for_another_size_only_if_it_is_that_sizes_proof(
    data: st.DataObject, size: int
) -> None:
    """The size is bound to its root by the checkpoint's signature, not by the
    proof: a proof made for one size, checked against the signed root of a size
    one bit away, verifies only where it is that tree's own proof too."""
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, LOG[:size])
    other = size ^ (1 << data.draw(st.integers(0, 6)))
    own = index < other and proof == merkle.inclusion_proof(index, LOG[:other])
    root = merkle.root(LOG[:other])
    verified = _verifies(merkle.verify_inclusion, index, other, LOG[index], proof, root)
    assert verified == own


@settings(max_examples=300, deadline=None)
@given(data=st.data(), size=st.integers(min_value=2, max_value=70))
def test_any_single_bit_change_breaks_a_consistency_proof(data: st.DataObject, size: int) -> None:
    first = data.draw(st.integers(1, size - 1))
    old, new = merkle.root(LOG[:first]), merkle.root(LOG[:size])
    proof = merkle.consistency_proof(first, LOG[:size])
    bit = data.draw(st.integers(0, 10_000))
    target = data.draw(st.sampled_from(["proof", "old", "new"]))
    if target == "proof":
        position = bit % len(proof)
        proof = [*proof[:position], _flip(proof[position], bit), *proof[position + 1 :]]
    elif target == "old":
        old = _flip(old, bit)
    else:
        new = _flip(new, bit)
    with pytest.raises(ProofError):
        merkle.verify_consistency(first, size, old, new, proof)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), size=st.integers(min_value=2, max_value=70))
def test_a_consistency_proof_holds_for_other_sizes_only_if_it_is_their_proof(
    data: st.DataObject, size: int
) -> None:
    first = data.draw(st.integers(1, size - 1))
    proof = merkle.consistency_proof(first, LOG[:size])
    shift = 1 << data.draw(st.integers(0, 6))
    one, two = data.draw(st.sampled_from([(first ^ shift, size), (first, size ^ shift)]))
    own = 1 <= one <= two and proof == merkle.consistency_proof(one, LOG[:two])
    roots = merkle.root(LOG[:one]), merkle.root(LOG[:two])
    assert _verifies(merkle.verify_consistency, one, two, *roots, proof) == own


@settings(max_examples=100, deadline=None)
@given(size=sizes)
def test_frontier_roots_and_completed_subtrees_match_the_tree(size: int) -> None:
    leaves = _leaves(size)
    frontier, stored = Frontier(), {}
    for leaf in leaves:
        stored.update({(level, index): value for level, index, value in frontier.append(leaf)})
        assert frontier.root() == merkle.root(leaves[: frontier.size])
    for (level, index), value in stored.items():
        assert value == merkle.root(leaves[index << level : (index + 1) << level])
    assert Frontier.load(size, frontier.pack()) == frontier


# --- an independent implementation -------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=sizes)
def test_roots_and_inclusion_paths_agree_with_pymerkle(data: st.DataObject, size: int) -> None:
    entries = [f"entry {i}".encode() for i in range(size)]
    other = InmemoryTree(algorithm="sha256")
    for entry in entries:
        other.append_entry(entry)
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    later = data.draw(st.integers(1, size))
    assert other.get_root(later) == merkle.root(leaves[:later])
    index = data.draw(st.integers(0, later - 1))
    theirs = other.prove_inclusion(index + 1, later).path  # 1-based; path[0] is the leaf
    assert theirs[1:] == merkle.inclusion_proof(index, leaves[:later])
