"""Every request is verified by orders itself; failures per RFC 6750."""

import asyncio
import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.tokens import JwksServer, SigningKey, access_token_claims


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _challenge(error: str, description: str) -> str:
    return f'Bearer realm="orders", error="{error}", error_description="{description}"'


async def _get(client, token: str):
    return await client.get("/orders", headers={"Authorization": f"Bearer {token}"})


async def test_a_valid_token_is_accepted(client, mint):
    response = await _get(client, mint())

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("claims", "headers", "description"),
    [
        pytest.param(
            {"exp": int(time.time()) - 60}, {}, "the token has expired", id="expired"
        ),
        pytest.param(
            {"iss": "http://evil.test/auth"},
            {},
            "the token was not issued by http://issuer.test/auth",
            id="wrong-iss",
        ),
        pytest.param(
            {"aud": "billing"},
            {},
            "the token is not meant for this API (aud)",
            id="wrong-aud",
        ),
        pytest.param(
            {},
            {"typ": "JWT"},
            "the token's type 'JWT' is not 'at+jwt' (RFC 9068)",
            id="wrong-typ",
        ),
        pytest.param({"sub": None}, {}, "the token has no 'sub' claim", id="no-sub"),
    ],
)
async def test_a_token_that_fails_a_check_is_invalid_token(
    client, rsa_key, claims, headers, description
):
    token = rsa_key.sign(access_token_claims(**claims), headers=headers)

    response = await _get(client, token)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == _challenge(
        "invalid_token", description
    )
    assert response.json()["error"] == "invalid_token"
    assert response.json()["detail"] == description


async def test_alg_none_is_refused(client, rsa_key):
    header = {"alg": "none", "typ": "at+jwt", "kid": rsa_key.kid}
    token = f"{_b64(header)}.{_b64(access_token_claims(scope='orders:admin'))}."

    response = await _get(client, token)

    assert response.status_code == 401
    assert response.json()["detail"] == (
        "the token's algorithm 'none' is not accepted; expected one of ['RS256', 'ES256']"
    )


async def test_hs256_signed_with_the_public_key_is_refused(client, rsa_key):
    public_pem = rsa_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": rsa_key.kid}
    signing_input = f"{_b64(header)}.{_b64(access_token_claims())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = (
        f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    )

    response = await _get(client, token)

    assert response.status_code == 401
    assert response.json()["detail"].startswith(
        "the token's algorithm 'HS256' is not accepted"
    )


async def test_a_tampered_signature_is_refused(client, mint):
    header, payload, signature = mint().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    response = await _get(client, f"{header}.{payload}.{flipped}")

    assert response.status_code == 401
    assert response.json()["detail"] == "the token's signature does not verify"


async def test_a_tampered_payload_is_refused(client, mint):
    header, _, signature = mint().split(".")
    forged = _b64(access_token_claims(scope="orders:admin"))

    response = await _get(client, f"{header}.{forged}.{signature}")

    assert response.status_code == 401
    assert response.json()["detail"] == "the token's signature does not verify"


async def test_an_unknown_kid_is_refetched_once_then_accepted(client, jwks_server):
    rotated = SigningKey.generate("RS256")
    jwks_server.publish(rotated)
    fetches = jwks_server.fetches

    response = await _get(client, rotated.sign(access_token_claims()))

    assert response.status_code == 200
    assert jwks_server.fetches == fetches + 1


async def test_an_unknown_kid_that_stays_unknown_is_invalid_token(client, jwks_server):
    stranger = SigningKey.generate("RS256")

    response = await _get(client, stranger.sign(access_token_claims()))

    assert response.status_code == 401
    assert response.json()["detail"] == (
        f"the token's key {stranger.kid!r} is not one of the issuer's keys"
    )


async def test_a_kid_with_control_characters_cannot_inject_headers(client, rsa_key):
    token = rsa_key.sign(
        access_token_claims(), headers={"kid": "x\r\nSet-Cookie: a=b\u00e9"}
    )

    response = await _get(client, token)

    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    # repr() already escapes CR and LF; the non-ASCII letter becomes "?", and
    # the quoted-string escapes the backslashes once more (RFC 9110 5.6.4).
    assert response.headers["www-authenticate"] == _challenge(
        "invalid_token",
        r"the token's key 'x\\r\\nSet-Cookie: a=b?' is not one of the issuer's keys",
    )


async def test_no_credentials_is_a_bare_challenge(client):
    response = await client.get("/orders")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="orders"'
    assert response.json()["detail"] == (
        "This API needs an access token: send 'Authorization: Bearer <token>'."
    )
    assert "error" not in response.json()


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Token abc"]
)
async def test_a_malformed_authorization_header_is_invalid_request(
    client, authorization
):
    response = await client.get("/orders", headers={"Authorization": authorization})

    description = (
        "the Authorization header must be 'Bearer <token>' (RFC 6750 section 2.1)"
    )
    assert response.status_code == 400
    assert response.headers["www-authenticate"] == _challenge(
        "invalid_request", description
    )
    assert response.json()["error"] == "invalid_request"


async def test_a_token_in_the_query_string_is_refused(client, mint):
    token = mint()

    alone = await client.get("/orders", params={"access_token": token})
    with_header = await client.get(
        "/orders",
        params={"access_token": token},
        headers={"Authorization": f"Bearer {token}"},
    )

    description = (
        "access tokens are not accepted in the query string (OAuth 2.1 section "
        "5.2); send 'Authorization: Bearer <token>'"
    )
    for response in (alone, with_header):
        assert response.status_code == 400
        assert response.headers["www-authenticate"] == _challenge(
            "invalid_request", description
        )


async def test_two_authorization_headers_are_invalid_request(client, mint):
    token = mint()

    response = await client.get(
        "/orders",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")],
    )

    assert response.status_code == 400
    assert response.json()["error_description"] == (
        "send one Authorization header, not several (RFC 6750 section 2)"
    )


async def test_a_token_without_the_scope_is_insufficient_scope(client, mint):
    response = await _get(client, mint(scope="openid profile"))

    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="orders", error="insufficient_scope", '
        "error_description=\"this operation needs the scope 'orders:read'\", "
        'scope="orders:read"'
    )
    assert response.json()["scope"] == "orders:read"


async def test_readiness_waits_for_the_first_jwks_fetch(start_orders, rsa_key):
    jwks = JwksServer()
    jwks.failing = True
    jwks.start()
    try:
        async with start_orders(jwks.url) as client:
            before = await client.get("/readyz")
            refused = await _get(client, rsa_key.sign(access_token_claims()))

            jwks.publish(rsa_key)
            jwks.failing = False
            deadline = time.monotonic() + 15
            after = await client.get("/readyz")
            while after.status_code != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                after = await client.get("/readyz")
            accepted = await _get(client, rsa_key.sign(access_token_claims()))
    finally:
        jwks.stop()

    assert before.status_code == 503
    assert before.json()["checks"]["jwks"].startswith("JwksNotFetched: no key set")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert after.status_code == 200
    assert accepted.status_code == 200
