"""Checkpoints as C2SP signed notes: the Go reference implementation's example
(golang.org/x/mod/sumdb/note) reproduced byte for byte, and bad notes refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.merkle import EMPTY_ROOT
from gateway.audit.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    key_id,
    open_checkpoint,
    open_note,
)

# From the documentation and tests of golang.org/x/mod/sumdb/note.
GO_SIGNER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_SIGNER = Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(GO_SIGNER_SEED))


def test_key_id_verifier_key_and_signature_match_the_go_reference() -> None:
    assert key_id("PeterNeumann", GO_SIGNER.verifier.public).hex() == "c74f20a3"
    assert str(GO_SIGNER.verifier) == GO_VERIFIER
    assert GO_SIGNER.sign(GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, Verifier.parse(GO_VERIFIER)) == GO_TEXT


def test_an_edited_note_does_not_verify() -> None:
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), Verifier.parse(GO_VERIFIER))


def test_a_note_by_another_key_names_the_key_that_signed_it() -> None:
    other = Signer("PeterNeumann", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match=r"not signed by PeterNeumann\+c74f20a3 \(signed by"):
        open_note(other.sign(GO_TEXT), Verifier.parse(GO_VERIFIER))


@pytest.mark.parametrize(
    "text",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not Ed25519
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "",
    ],
)
def test_malformed_verifier_keys_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Verifier.parse(text)


def test_checkpoint_text_is_origin_size_root_and_time() -> None:
    checkpoint = Checkpoint.at("example.org/log", 0, EMPTY_ROOT, datetime(2026, 1, 2, tzinfo=UTC))
    assert checkpoint.text() == (
        "example.org/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        "Time: 2026-01-02T00:00:00Z\n"
    )
    assert Checkpoint.parse(checkpoint.text()) == checkpoint
    assert checkpoint.time == datetime(2026, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "example.org/log\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "example.org/log\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "example.org/log\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF=\n",
        "example.org/log\n1\n",
        "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "example.org/log\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_a_checkpoint_of_another_log_is_refused() -> None:
    signer = Signer("audit.example", Ed25519PrivateKey.generate())
    note = signer.sign(Checkpoint("other.example", 1, EMPTY_ROOT).text())
    with pytest.raises(NoteError, match="not the log"):
        open_checkpoint(note, signer.verifier)


@given(position=st.integers(min_value=0, max_value=10_000), bit=st.integers(0, 7))
def test_any_single_bit_change_to_a_signed_checkpoint_is_refused(position: int, bit: int) -> None:
    note = GO_SIGNER.sign(Checkpoint("PeterNeumann", 42, bytes(range(32))).text())
    data = bytearray(note.encode())
    data[position % len(data)] ^= 1 << bit
    try:
        changed = data.decode()
    except UnicodeDecodeError:
        return  # not text any more: no reader gets that far
    with pytest.raises(NoteError):
        open_checkpoint(changed, GO_SIGNER.verifier)
