"""Signing keys, a real JWKS endpoint and token minting, for resource-server tests.

The JWKS is served over HTTP from a thread on a free port, so a verifier under
test fetches it exactly as it fetches identity's in production; tests can add
and remove keys, count fetches and make the endpoint fail.
"""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "http://issuer.test/auth"


@dataclass(frozen=True)
class SigningKey:
    """A private key and the public JWK that publishes it."""

    kid: str
    algorithm: str
    private_key: Any = field(repr=False)

    @classmethod
    def generate(cls, algorithm: str = "RS256") -> "SigningKey":
        if algorithm == "ES256":
            private: Any = ec.generate_private_key(ec.SECP256R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(f"test-{uuid.uuid4().hex[:10]}", algorithm, private)

    @property
    def public_jwk(self) -> dict[str, Any]:
        codec = ECAlgorithm if self.algorithm == "ES256" else RSAAlgorithm
        jwk: dict[str, Any] = json.loads(codec.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, alg=self.algorithm, use="sig")
        return jwk

    def sign(
        self,
        claims: dict[str, Any],
        *,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """A JWT of ``claims`` signed by this key, typed as an access token."""
        header = {"kid": self.kid, "typ": "at+jwt", **(headers or {})}
        return jwt.encode(claims, self.private_key, self.algorithm, headers=header)


def access_token_claims(**overrides: Any) -> dict[str, Any]:
    """RFC 9068 claims for a user token of issuer :data:`ISSUER`; override any."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "orders",
        "client_id": "web",
        "scope": "orders:read orders:write",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


class JwksServer:
    """A JWKS endpoint whose keys, availability and fetch count tests control."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.failing = False
        self.delay_seconds = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                if owner.delay_seconds:
                    time.sleep(owner.delay_seconds)
                if owner.failing:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/jwk-set+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"

    def publish(self, *keys: SigningKey) -> None:
        """Publish ``keys`` in addition to those already published."""
        self.keys.extend(key.public_jwk for key in keys)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey.generate("RS256")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture
def jwks_server(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    """A JWKS endpoint publishing one RSA and one EC key."""
    server = JwksServer()
    server.publish(rsa_key, ec_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()
