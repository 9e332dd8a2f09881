"""A local RFC 8030 push service for the tests: it checks the VAPID JWT (RFC 8292), decrypts the
body with the subscription's private key (RFC 8291, aes128gcm, http_ece) and answers 201, 404,
410, 413 or 429 as the test asks. Nothing here reaches outside 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from multidict import CIMultiDict


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    """One push as the service got it, decrypted."""

    token: str
    payload: dict[str, Any]
    headers: CIMultiDict[str]
    vapid_key: str  # the `k` of the Authorization header: the site's public key
    claims: dict[str, Any]


@dataclass
class Device:
    token: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    answer: int = 201

    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


@dataclass
class PushService:
    devices: dict[str, Device] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused (bad JWT...)
    server: TestServer | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://{self.server.host}:{self.server.port}"

    def new_device(self, answer: int = 201) -> tuple[Device, str]:
        """A browser's subscription: (the device, its endpoint URL)."""
        token = b64url(os.urandom(12))
        device = Device(token, ec.generate_private_key(ec.SECP256R1()), os.urandom(16), answer)
        self.devices[token] = device
        return device, f"{self.origin}/push/{token}"

    def for_device(self, device: Device) -> list[Received]:
        return [r for r in self.received if r.token == device.token]

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + within
        while len(self.received) < count:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(self.received)} pushes arrived, not {count}")
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                continue
        return self.received

    async def handle(self, request: web.Request) -> web.Response:
        device = self.devices.get(request.match_info["token"])
        if device is None:
            return web.Response(status=404)
        body = await request.read()
        try:
            key, claims = self._check_vapid(request)
            payload = json.loads(
                http_ece.decrypt(
                    body,
                    private_key=device.private_key,
                    auth_secret=device.auth,
                    version="aes128gcm",
                )
            )
        except (ValueError, KeyError, InvalidSignature) as exc:
            self.refused.append(str(exc))
            return web.Response(status=400, text=str(exc))
        if request.headers.get("Content-Encoding") != "aes128gcm" or "TTL" not in request.headers:
            self.refused.append("missing Content-Encoding or TTL")
            return web.Response(status=400)
        if device.answer < 300:
            self.received.append(
                Received(device.token, payload, CIMultiDict(request.headers), key, claims)
            )
            self.arrived.set()
        return web.Response(status=device.answer)

    def _check_vapid(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("vapid "):
            raise ValueError("no VAPID Authorization header")
        parts = dict(item.strip().split("=", 1) for item in header[len("vapid ") :].split(","))
        token, key = parts["t"], parts["k"]
        head, body, signature = token.split(".")
        if json.loads(unb64url(head)).get("alg") != "ES256":
            raise ValueError("the JWT is not ES256")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        raw = unb64url(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(unb64url(body))
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.origin!r}")
        if not int(claims.get("exp", 0)) > time.time():
            raise ValueError("the JWT has expired")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            raise ValueError("the JWT has no sub")
        return key, claims


async def start_push_service() -> PushService:
    service = PushService()
    app = web.Application()
    app.router.add_post("/push/{token}", service.handle)
    service.server = TestServer(app, host="127.0.0.1")
    await service.server.start_server()
    return service
