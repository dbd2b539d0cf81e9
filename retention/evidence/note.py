"""Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint's text is three lines — the log's origin, the tree size in decimal, the root hash
in base64 — and its signature lines follow a blank line, each ``— <key name> <base64(key hash
|| Ed25519 signature)>``. The key hash is the first four bytes of ``SHA-256(name || 0x0A ||
0x01 || public key)``. Any signed-note verifier (Go's golang.org/x/mod/sumdb/note, Sigsum's,
transparency-dev's) reads the same bytes, so a tree head can be checked without this engine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_ED25519 = b"\x01"
_DASH = "\u2014 "  # an em dash and a space start every signature line


def origin_for(pinned_key_id: str) -> str:
    """The log's origin line: the installation, named by its pinned key (never rotated)."""
    return f"retention.ledger/{pinned_key_id}"


def key_hash(name: str, key: Ed25519PublicKey) -> bytes:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The checkpoint body of tlog-checkpoint: origin, size, base64 root, newline-ended."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def sign(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """The note: ``text``, a blank line, and one signature line by ``key`` under ``name``."""
    signature = key.sign(text.encode("utf-8"))
    value = base64.b64encode(key_hash(name, key.public_key()) + signature).decode("ascii")
    return f"{text}\n{_DASH}{name} {value}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str
    signatures: list[tuple[str, bytes, bytes]]
    """(key name, key hash, signature) of every signature line."""


class NoteError(ValueError):
    """A note or checkpoint that cannot be read; the message says which part."""


def parse(note: str) -> Checkpoint:
    """Split a signed checkpoint note into its parts, refusing any malformed one."""
    text, sep, block = note.rpartition("\n\n")
    if not sep:
        raise NoteError("the checkpoint has no signature block")
    text += "\n"
    lines = text.split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("the checkpoint text has fewer than three lines")
    origin, size_text, root_text = lines[:3]
    if not origin or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
        raise NoteError("the checkpoint's origin or tree size line is malformed")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise NoteError("the checkpoint's root hash line is not base64") from None
    if len(root) != 32:
        raise NoteError("the checkpoint's root hash is not 32 bytes")
    signatures = []
    if not block.endswith("\n"):
        raise NoteError("the checkpoint's signature block does not end with a newline")
    for line in block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise NoteError("a signature line does not start with an em dash")
        name, _, value = line[len(_DASH) :].partition(" ")
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise NoteError("a signature line is not base64") from None
        if not name or len(raw) < 5:
            raise NoteError("a signature line is malformed")
        signatures.append((name, raw[:4], raw[4:]))
    return Checkpoint(origin, int(size_text), root, text, signatures)


def verified_by(checkpoint: Checkpoint, name: str, key: Ed25519PublicKey) -> bool:
    """Whether a signature line by ``key`` under ``name`` signs the checkpoint's text."""
    wanted = key_hash(name, key)
    for signer, hashed, signature in checkpoint.signatures:
        if signer == name and hashed == wanted:
            try:
                key.verify(signature, checkpoint.text.encode("utf-8"))
            except InvalidSignature:
                return False
            return True
    return False
