"""Checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint, c2sp.org/signed-note).

A checkpoint's text is the origin line, the tree size in decimal, the root hash
in standard base64, then optional extension lines (the gateway adds
``Time: <RFC 3339 UTC>``), each ending in a newline. The signed note is that
text, an empty line, and one line per signature::

    — <key name> <base64(key ID (4 bytes) ‖ Ed25519 signature (64 bytes))>

The key ID is the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)
(0x01: the Ed25519 algorithm byte), and the verifier key, which auditors get
out of band, is ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>``. The
gateway signs with the key name equal to the origin. Base64 must be canonical,
so a signed note has exactly one spelling. Pure functions; nothing here reads
the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.audit.merkle import HASH_SIZE
from gateway.security import keys

ED25519 = 0x01
EM_DASH = "\u2014"
_SIGNATURE_LINE = re.compile(rf"^{EM_DASH} (\S+) (\S+)$")
_NAME = re.compile(r"[^\s+]+")
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


class NoteError(ValueError):
    """A note, checkpoint or verifier key is malformed, or a signature does not verify."""


def key_id(name: str, public: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 public key under ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


def check_key_name(name: str) -> None:
    """NoteError unless ``name`` is a valid key name (no '+' or whitespace, not empty)."""
    if not _NAME.fullmatch(name):
        raise NoteError(f"{name!r} is not a valid key name (no '+', no spaces, not empty)")


@dataclass(frozen=True)
class Verifier:
    """A signed-note verifier key: a name and an Ed25519 public key."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public)

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([ED25519]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A verifier key from its text form; NoteError if it is malformed or
        its key ID does not belong to its name and key."""
        name, _, rest = text.strip().partition("+")
        hex_id, _, encoded = rest.partition("+")
        check_key_name(name)
        try:
            key = base64.b64decode(encoded, validate=True)
            declared = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise NoteError(f"malformed verifier key {text.strip()!r}") from None
        if len(hex_id) != 8 or len(key) != 33 or key[0] != ED25519:
            raise NoteError(f"{text.strip()!r} is not an Ed25519 verifier key")
        verifier = cls(name, key[1:])
        if verifier.key_id != declared:
            raise NoteError(f"verifier key {name}: key ID {hex_id} does not match the key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """Signs notes with an Ed25519 private key under a key name."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, keys.public_raw(self.private_key))

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end in a newline)."""
        if not text.endswith("\n"):
            raise NoteError("a note's text must end with a newline")
        signature = self.verifier.key_id + self.private_key.sign(text.encode())
        return f"{text}\n{EM_DASH} {self.name} {base64.b64encode(signature).decode()}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """A signed note's text and signatures; NoteError if it is malformed."""
    text, separator, block = note.rpartition("\n\n")
    if not separator or not block.endswith("\n"):
        raise NoteError("a signed note is its text, an empty line and signature lines")
    signatures = []
    for line in block[:-1].split("\n"):
        match = _SIGNATURE_LINE.match(line)
        if not match:
            raise NoteError(f"malformed signature line {line!r}")
        raw = _base64(match.group(2))
        if raw is None:
            raise NoteError(f"signature of {match.group(1)} is not canonical base64")
        if len(raw) < 5:
            raise NoteError(f"signature of {match.group(1)} is too short")
        signatures.append(NoteSignature(match.group(1), raw[:4], raw[4:]))
    return text + "\n", signatures


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` if ``verifier`` signed it; NoteError otherwise.

    Signatures by other keys are ignored, as signed-note verifiers do; a note
    that ``verifier`` did not sign is refused naming the keys that did.
    """
    text, signatures = split_note(note)
    mine = [s for s in signatures if s.name == verifier.name and s.key_id == verifier.key_id]
    if not mine:
        others = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in signatures)
        raise NoteError(
            f"not signed by {verifier.name}+{verifier.key_id.hex()} (signed by {others})"
        )
    if not all(verifier.verify(text.encode(), s.signature) for s in mine):
        raise NoteError(f"the signature of {verifier.name} does not verify")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size, root hash, and the gateway's extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = field(default=())

    @classmethod
    def at(cls, origin: str, size: int, root_hash: bytes, time: datetime) -> Checkpoint:
        """A checkpoint stamped with ``time`` (to the second)."""
        stamp = time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(origin, size, root_hash, (f"Time: {stamp}",))

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """A checkpoint from a note's text; NoteError if it is malformed."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint has an origin, a size and a root hash line")
        origin, size, encoded, *extensions = lines[:-1]
        if not origin:
            raise NoteError("the checkpoint's origin line is empty")
        if not _SIZE.fullmatch(size):
            raise NoteError(f"checkpoint size {size!r} is not a decimal number")
        root_hash = _base64(encoded) or b""
        if len(root_hash) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash {encoded!r} is not a base64 SHA-256 hash")
        if any(not line for line in extensions):
            raise NoteError("a checkpoint's extension lines must not be empty")
        return cls(origin, int(size), root_hash, tuple(extensions))

    @property
    def time(self) -> datetime | None:
        """The time of a ``Time:`` extension line, if there is one."""
        for line in self.extensions:
            if line.startswith("Time: "):
                try:
                    return datetime.strptime(line[6:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                except ValueError:
                    return None
        return None


def _base64(text: str) -> bytes | None:
    """The bytes of canonical standard base64 (so a note has exactly one spelling)."""
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return data if base64.b64encode(data).decode() == text else None


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint in ``note``, checked against ``verifier``; NoteError otherwise."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the log {verifier.name!r}")
    return checkpoint
