import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from servicekit.tokens import (
    InvalidToken,
    KeysUnavailable,
    MalformedAuthorization,
    TokenVerifier,
    bearer_token,
    www_authenticate,
)
from tests.support.tokens import ISSUER, SigningKey, access_token_claims


@pytest.fixture
async def verifier(jwks_server):
    verifier = TokenVerifier(
        jwks_url=jwks_server.url,
        issuer=ISSUER,
        audience="orders",
        leeway_seconds=5,
        refetch_cooldown_seconds=60,
    )
    await verifier.start()
    yield verifier
    await verifier.close()


@pytest.mark.parametrize("key_fixture", ["rsa_key", "ec_key"])
async def test_a_valid_token_verifies_with_its_claims(request, verifier, key_fixture):
    key = request.getfixturevalue(key_fixture)
    claims = access_token_claims(aud=["orders", "other"])

    token = await verifier.verify(key.sign(claims))

    assert token.subject == "user-1"
    assert token.client_id == "web"
    assert token.scopes == {"orders:read", "orders:write"}
    assert token.audience == ("orders", "other")
    assert token.issuer == ISSUER
    assert token.expires_at == claims["exp"]
    assert token.token_id == claims["jti"]
    assert token.has_scopes(["orders:read"])
    assert not token.has_scopes(["orders:admin"])


# Times are offsets from the moment the test runs, not from collection: a long
# suite would otherwise turn "ten minutes ahead" into the past.
@pytest.mark.parametrize(
    ("claims", "description"),
    [
        pytest.param({"exp": -60}, "the token has expired", id="expired"),
        pytest.param(
            {"iss": "http://evil.test/auth"},
            f"the token was not issued by {ISSUER}",
            id="wrong-iss",
        ),
        pytest.param(
            {"aud": "billing"},
            "the token is not meant for this API (aud)",
            id="wrong-aud",
        ),
        pytest.param({"nbf": 600}, "the token is not valid yet", id="nbf-future"),
        pytest.param({"iat": 600}, "the token is not valid yet", id="iat-future"),
        pytest.param({"exp": None}, "the token has no 'exp' claim", id="no-exp"),
        pytest.param({"aud": None}, "the token has no 'aud' claim", id="no-aud"),
    ],
)
async def test_claims_are_checked(verifier, rsa_key, claims, description):
    now = int(time.time())
    claims = {
        name: now + value if name in ("exp", "nbf", "iat") and value else value
        for name, value in claims.items()
    }

    with pytest.raises(InvalidToken) as raised:
        await verifier.verify(rsa_key.sign(access_token_claims(**claims)))

    assert raised.value.description == description


async def test_a_small_clock_skew_is_tolerated(verifier, rsa_key):
    token = rsa_key.sign(access_token_claims(exp=int(time.time()) - 2))

    assert (await verifier.verify(token)).subject == "user-1"


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [("at+jwt", True), ("application/at+jwt", True), ("AT+JWT", True), ("JWT", False)],
)
async def test_only_access_token_types_are_accepted(verifier, rsa_key, typ, accepted):
    token = rsa_key.sign(access_token_claims(), headers={"typ": typ})

    if accepted:
        await verifier.verify(token)
    else:
        with pytest.raises(InvalidToken, match="is not 'at\\+jwt'"):
            await verifier.verify(token)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_alg_none_is_refused(verifier, rsa_key):
    header = {"alg": "none", "typ": "at+jwt", "kid": rsa_key.kid}
    token = f"{_b64(header)}.{_b64(access_token_claims())}."

    with pytest.raises(InvalidToken) as raised:
        await verifier.verify(token)

    assert raised.value.description == (
        "the token's algorithm 'none' is not accepted; expected one of ['RS256', 'ES256']"
    )


async def test_hs256_signed_with_the_public_key_is_refused(verifier, rsa_key):
    public_pem = rsa_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": rsa_key.kid}
    signing_input = f"{_b64(header)}.{_b64(access_token_claims())}"

    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = (
        f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    )

    with pytest.raises(InvalidToken, match="algorithm 'HS256' is not accepted"):
        await verifier.verify(token)


async def test_a_tampered_payload_fails_the_signature(verifier, rsa_key):
    header, _, signature = rsa_key.sign(access_token_claims()).split(".")
    forged = _b64(access_token_claims(scope="orders:admin"))

    with pytest.raises(InvalidToken) as raised:
        await verifier.verify(f"{header}.{forged}.{signature}")

    assert raised.value.description == "the token's signature does not verify"


async def test_an_algorithm_that_does_not_match_the_key_is_refused(
    verifier, rsa_key, ec_key
):
    # An EC-signed token claiming the RSA key's kid.
    token = jwt.encode(
        access_token_claims(),
        ec_key.private_key,
        "ES256",
        headers={"kid": rsa_key.kid, "typ": "at+jwt"},
    )

    with pytest.raises(InvalidToken, match="does not match its key"):
        await verifier.verify(token)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 50])
async def test_garbage_is_a_malformed_jwt(verifier, token):
    with pytest.raises(InvalidToken, match="not a well-formed JWT"):
        await verifier.verify(token)


async def test_an_unknown_kid_triggers_one_refetch_then_verifies(verifier, jwks_server):
    rotated = SigningKey.generate("RS256")
    jwks_server.publish(rotated)
    fetches = jwks_server.fetches

    token = await verifier.verify(rotated.sign(access_token_claims()))

    assert token.subject == "user-1"
    assert jwks_server.fetches == fetches + 1


async def test_concurrent_unknown_kids_share_one_refetch(verifier, jwks_server):
    rotated = SigningKey.generate("ES256")
    jwks_server.publish(rotated)
    jwks_server.delay_seconds = 0.2
    fetches = jwks_server.fetches
    tokens = [rotated.sign(access_token_claims()) for _ in range(20)]

    verified = await asyncio.gather(*(verifier.verify(t) for t in tokens))

    assert len(verified) == 20
    assert jwks_server.fetches == fetches + 1


async def test_after_a_refetch_unknown_kids_wait_for_the_cooldown(
    verifier, jwks_server
):
    stranger = SigningKey.generate("RS256")
    fetches = jwks_server.fetches

    for _ in range(3):
        with pytest.raises(InvalidToken) as raised:
            await verifier.verify(stranger.sign(access_token_claims()))

    assert raised.value.description == (
        f"the token's key {stranger.kid!r} is not one of the issuer's keys"
    )
    assert jwks_server.fetches == fetches + 1


async def test_a_failed_refresh_keeps_the_last_good_keys(jwks_server, rsa_key):
    verifier = TokenVerifier(
        jwks_url=jwks_server.url,
        issuer=ISSUER,
        audience="orders",
        jwks_ttl_seconds=0,
        refetch_cooldown_seconds=0,
    )
    await verifier.start()
    try:
        jwks_server.failing = True
        await verifier.jwks.refresh()

        token = await verifier.verify(rsa_key.sign(access_token_claims()))
    finally:
        await verifier.close()

    assert token.subject == "user-1"
    assert verifier.ready


async def test_an_empty_key_set_is_not_cached(jwks_server, rsa_key):
    published = list(jwks_server.keys)
    jwks_server.keys.clear()
    verifier = TokenVerifier(
        jwks_url=jwks_server.url,
        issuer=ISSUER,
        audience="orders",
        refetch_cooldown_seconds=0,
    )
    await verifier.start()
    try:
        assert not verifier.ready
        jwks_server.keys.extend(published)

        token = await verifier.verify(rsa_key.sign(access_token_claims()))
    finally:
        await verifier.close()

    assert token.subject == "user-1"


async def test_without_any_keys_the_error_says_keys_are_unavailable(
    jwks_server, rsa_key
):
    jwks_server.failing = True
    verifier = TokenVerifier(jwks_url=jwks_server.url, issuer=ISSUER, audience="orders")
    await verifier.start()
    try:
        with pytest.raises(KeysUnavailable):
            await verifier.verify(rsa_key.sign(access_token_claims()))
    finally:
        await verifier.close()


async def test_symmetric_and_private_key_material_is_ignored(jwks_server, rsa_key):
    jwks_server.keys[:] = [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0", "alg": "HS256"},
        {**rsa_key.public_jwk, "d": "private-part"},
    ]
    verifier = TokenVerifier(jwks_url=jwks_server.url, issuer=ISSUER, audience="orders")
    await verifier.start()
    try:
        assert verifier.jwks.kids == {rsa_key.kid}
        await verifier.verify(rsa_key.sign(access_token_claims()))
    finally:
        await verifier.close()


def test_unsafe_algorithms_cannot_be_configured():
    with pytest.raises(ValueError, match=r"\['HS256', 'none'\] are not allowed"):
        TokenVerifier(
            jwks_url="http://x",
            issuer=ISSUER,
            audience="a",
            algorithms=["HS256", "none"],
        )


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("bearer abc==", "abc=="),
        ("BEARER  abc", "abc"),
    ],
)
def test_bearer_tokens_are_read_from_the_authorization_header(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "abc"],
)
def test_a_malformed_authorization_header_is_an_invalid_request(header):
    with pytest.raises(MalformedAuthorization, match="must be 'Bearer <token>'"):
        bearer_token(header)


def test_www_authenticate_follows_rfc_6750():
    assert www_authenticate(realm="orders") == 'Bearer realm="orders"'
    assert www_authenticate() == "Bearer"
    assert www_authenticate(
        realm="orders",
        error="insufficient_scope",
        description='needs "orders:admin"',
        scope="orders:admin",
    ) == (
        'Bearer realm="orders", error="insufficient_scope", '
        'error_description="needs \\"orders:admin\\"", scope="orders:admin"'
    )


async def test_a_cached_token_is_answered_without_verifying_again(jwks_server, rsa_key):
    verifier = TokenVerifier(
        jwks_url=jwks_server.url, issuer=ISSUER, audience="orders", cache_size=2
    )
    await verifier.start()
    try:
        token = rsa_key.sign(access_token_claims())
        first = await verifier.verify(token)
        again = await verifier.verify(token)
    finally:
        await verifier.close()

    assert again is first


async def test_the_cache_keeps_no_usable_token(jwks_server, rsa_key):
    verifier = TokenVerifier(
        jwks_url=jwks_server.url, issuer=ISSUER, audience="orders", cache_size=2
    )
    await verifier.start()
    try:
        token = rsa_key.sign(access_token_claims())
        await verifier.verify(token)
    finally:
        await verifier.close()

    assert list(verifier._verified) == [hashlib.sha256(token.encode()).digest()]


async def test_verifiers_can_share_one_key_set(jwks_server, rsa_key):
    first = TokenVerifier(jwks_url=jwks_server.url, issuer=ISSUER, audience="orders")
    second = TokenVerifier(
        jwks_url=jwks_server.url, issuer=ISSUER, audience="identity", jwks=first.jwks
    )
    await first.start()
    try:
        orders = await first.verify(rsa_key.sign(access_token_claims()))
        identity = await second.verify(
            rsa_key.sign(access_token_claims(aud="identity"))
        )
        await second.close()
        # The shared cache is the first verifier's: closing the second keeps it.
        again = await first.verify(rsa_key.sign(access_token_claims(jti="other")))
    finally:
        await first.close()

    assert jwks_server.fetches == 1
    assert (orders.audience, identity.audience) == (("orders",), ("identity",))
    assert again.audience == ("orders",)


async def test_a_cached_token_still_expires(jwks_server, rsa_key):
    verifier = TokenVerifier(
        jwks_url=jwks_server.url,
        issuer=ISSUER,
        audience="orders",
        cache_size=2,
        leeway_seconds=0,
    )
    await verifier.start()
    try:
        token = rsa_key.sign(access_token_claims(exp=int(time.time()) + 1))
        await verifier.verify(token)
        await asyncio.sleep(1.1)

        with pytest.raises(InvalidToken, match="the token has expired"):
            await verifier.verify(token)
    finally:
        await verifier.close()


async def test_a_cached_token_dies_with_its_key(jwks_server, rsa_key, ec_key):
    verifier = TokenVerifier(
        jwks_url=jwks_server.url,
        issuer=ISSUER,
        audience="orders",
        cache_size=2,
        refetch_cooldown_seconds=0,
    )
    await verifier.start()
    try:
        token = rsa_key.sign(access_token_claims())
        await verifier.verify(token)
        jwks_server.keys[:] = [ec_key.public_jwk]
        await verifier.jwks.refresh()

        with pytest.raises(InvalidToken, match="is not one of the issuer's keys"):
            await verifier.verify(token)
    finally:
        await verifier.close()


async def test_the_cache_holds_at_most_cache_size_tokens(jwks_server, rsa_key):
    verifier = TokenVerifier(
        jwks_url=jwks_server.url, issuer=ISSUER, audience="orders", cache_size=3
    )
    await verifier.start()
    try:
        tokens = [rsa_key.sign(access_token_claims()) for _ in range(5)]
        verified = [await verifier.verify(t) for t in tokens]
        oldest_again = await verifier.verify(tokens[0])
        newest_again = await verifier.verify(tokens[-1])
    finally:
        await verifier.close()

    assert oldest_again is not verified[0]
    assert newest_again is verified[-1]
