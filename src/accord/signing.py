"""The operator's Ed25519 signing key: created by ``accord init``, public half exportable.

Signatures are over canonical JSON (:func:`canonical_json`): the JSON Canonicalization Scheme
of RFC 8785 (the ``rfc8785`` package), so that a verifier in any language rebuilds the exact
bytes that were signed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from accord.errors import AccordError, NotFound

PRIVATE_NAME = "operator_ed25519.pem"
PUBLIC_NAME = "operator_ed25519.pub.pem"
ALGORITHM = "ed25519"


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 (JCS) canonical bytes of a JSON value.

    Integers must lie within ±(2**53 - 1) (what every JSON implementation reads exactly);
    a value that cannot be canonicalised raises :class:`AccordError` naming the problem.
    """
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        msg = f"canonical JSON: {exc}"
        raise AccordError(msg) from exc


@dataclass(frozen=True)
class OperatorKey:
    """The operator's signing key.

    Attributes:
        private: the Ed25519 private key.
    """

    private: Ed25519PrivateKey

    @property
    def public_hex(self) -> str:
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return raw.hex()

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, message: bytes) -> str:
        """The hex Ed25519 signature of ``message``."""
        return self.private.sign(message).hex()

    def signature_block(self, statement: Any) -> dict[str, str]:
        """Sign a JSON statement; the block says how to check it."""
        return {"algorithm": ALGORITHM, "public_key": self.public_hex, "value": self.sign(canonical_json(statement))}


def keys_dir(home: Path) -> Path:
    return home / "keys"


def ensure_operator_key(home: Path) -> tuple[OperatorKey, bool]:
    """Load the operator key under ``home/keys``, creating it (mode 0600) if absent; ``True`` if new."""
    folder = keys_dir(home)
    path = folder / PRIVATE_NAME
    if path.is_file():
        return load_operator_key(home), False
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)
    operator = OperatorKey(key)
    (folder / PUBLIC_NAME).write_text(operator.public_pem)
    return operator, True


def load_operator_key(home: Path) -> OperatorKey:
    path = keys_dir(home) / PRIVATE_NAME
    if not path.is_file():
        msg = f"operator key: none at {path}; run `accord init` first"
        raise NotFound(msg)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        msg = f"operator key: {path} is not an Ed25519 private key"
        raise AccordError(msg)
    return OperatorKey(key)


def parse_public_key(text: str) -> str:
    """A public key given as 64 hex digits or a PEM block, as hex."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            msg = "public key: the PEM block is not an Ed25519 public key"
            raise AccordError(msg)
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        msg = f"public key: {text[:20]!r}... is neither 64 hex digits nor a PEM block"
        raise AccordError(msg)
    return raw.hex()


def verify_signature(public_key_hex: str, message: bytes, signature_hex: str) -> bool:
    """Whether ``signature_hex`` is a valid Ed25519 signature of ``message`` by that key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
