"""The VAPID key pair (RFC 8292): the server's identity towards push services.

The private key is generated on first start and kept beside the cookie secret (PEM, mode
0600), or given by APP_VAPID_PRIVATE_KEY (PEM text, or the raw 32-byte scalar in base64url as
web-push tools print it). Browsers subscribe with the public key, so changing it strands every
subscription: keep the file with the database.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.errors import AppError
from app.private_file import create_private_file


class VapidError(AppError):
    """A VAPID key that cannot be used."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_private_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_vapid_key(path: Path, env: Mapping[str, str]) -> bytes:
    """The private key as PEM: APP_VAPID_PRIVATE_KEY if set, else the file, made when missing."""
    raw = env.get("APP_VAPID_PRIVATE_KEY")
    if raw is not None:
        pem = _pem_from_text(raw.strip())
    else:
        if not path.exists():
            create_private_file(path, new_private_pem())
        pem = path.read_bytes()
    private_key(pem)  # refuse a broken key at start, not at the first push
    return pem


def _pem_from_text(text: str) -> bytes:
    if text.startswith("-----BEGIN"):
        return text.encode()
    try:
        scalar = int.from_bytes(b64url_decode(text), "big")
        key = ec.derive_private_key(scalar, ec.SECP256R1())
    except (ValueError, TypeError):
        raise VapidError(
            "APP_VAPID_PRIVATE_KEY must be a PEM private key or a base64url P-256 scalar"
        ) from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise VapidError("the VAPID private key is not a readable PEM key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise VapidError("the VAPID private key must be a P-256 (prime256v1) key")
    return key


def application_server_key(pem: bytes) -> str:
    """The public key as browsers want it: the uncompressed point, base64url."""
    point = (
        private_key(pem)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return b64url(point)
