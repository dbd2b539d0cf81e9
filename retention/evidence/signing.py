"""The installation's Ed25519 key: signs ledger checkpoints and compliance exports.

``retention init`` writes the private key (PKCS#8 PEM, mode 0600) and the public key beside
it as ``<name>.pub.pem``; an auditor needs only the public key to verify.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from retention.errors import UsageError
from retention.filemodes import private_dirs


def public_path(private_path: Path) -> Path:
    name = private_path.name.removesuffix(".pem")
    return private_path.with_name(f"{name}.pub.pem")


def create_key(private_path: Path) -> tuple[Path, bool]:
    """Create the key pair unless it exists; return the public key path and whether it was new."""
    pub = public_path(private_path)
    if private_path.exists():
        if not pub.exists():
            pub.write_bytes(_public_pem(load_private(private_path).public_key()))
        return pub, False
    private_dirs(private_path.parent)  # a directory made here for the key is 0700
    key = Ed25519PrivateKey.generate()
    write_private(private_path, key)
    pub.write_bytes(_public_pem(key.public_key()))
    return pub, True


def write_private(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a new private key file, readable by its owner only; never over another."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise UsageError(f"no signing key at {path}: run `retention init` first") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} is not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"no public key at {path}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint naming the key that signed something."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_pem(key: Ed25519PublicKey) -> str:
    return _public_pem(key).decode("ascii")


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
