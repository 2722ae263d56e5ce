"""Authentication at the gateway: the verifiers, the cache of verified tokens."""

import pytest

from gateway.auth import Authenticator, AuthPolicy
from gateway.errors import BadRequest, Forbidden, ServiceUnavailable, Unauthorized
from tests.support.tokens import ISSUER, access_token_claims

POLICY = AuthPolicy(required=True, audience="orders", scopes=("orders:read",))


@pytest.fixture
async def authenticator(jwks_server):
    checker = Authenticator(
        jwks_url=jwks_server.url, issuer=ISSUER, audiences=["orders", "identity"]
    )
    await checker.start()
    yield checker
    await checker.close()


def bearer(token: str) -> bytes:
    return f"Bearer {token}".encode()


async def test_a_repeated_token_is_not_verified_again(authenticator, rsa_key):
    verifier = authenticator._verifiers["orders"]
    verified = []
    original = verifier._verify

    async def counting(token: str):
        verified.append(token)
        return await original(token)

    verifier._verify = counting
    token = rsa_key.sign(access_token_claims())

    first = await authenticator.authenticate(bearer(token), POLICY)
    again = [await authenticator.authenticate(bearer(token), POLICY) for _ in range(5)]

    assert len(verified) == 1
    assert all(a is first for a in again)
    assert first.subject == "user-1"


async def test_audiences_share_one_key_set(authenticator, jwks_server, rsa_key):
    assert jwks_server.fetches == 1

    identity_token = rsa_key.sign(access_token_claims(aud="identity"))
    policy = AuthPolicy(required=True, audience="identity")

    assert (
        await authenticator.authenticate(bearer(identity_token), policy)
    ).audience == ("identity",)
    with pytest.raises(Unauthorized) as refused:
        await authenticator.authenticate(bearer(identity_token), POLICY)
    assert refused.value.detail == (
        "The bearer token was rejected: the token is not meant for this API (aud)."
    )


@pytest.mark.parametrize(
    ("authorization", "error", "status", "challenge"),
    [
        (None, Unauthorized, 401, 'Bearer realm="gateway"'),
        (
            b"Basic dXNlcjpwYXNz",
            BadRequest,
            400,
            'Bearer realm="gateway", error="invalid_request", error_description='
            "\"the Authorization header must be 'Bearer <token>' (RFC 6750 section 2.1)\"",
        ),
        (
            b"Bearer",
            BadRequest,
            400,
            'Bearer realm="gateway", error="invalid_request", error_description='
            "\"the Authorization header must be 'Bearer <token>' (RFC 6750 section 2.1)\"",
        ),
        (
            b"Bearer " + b"a" * 20000,
            BadRequest,
            400,
            'Bearer realm="gateway", error="invalid_request", '
            'error_description="the header is too long"',
        ),
        (
            b"Bearer caf\xe9",
            BadRequest,
            400,
            'Bearer realm="gateway", error="invalid_request", error_description='
            "\"the Authorization header must be 'Bearer <token>' (RFC 6750 section 2.1)\"",
        ),
        (
            b"Bearer not.a.jwt",
            Unauthorized,
            401,
            'Bearer realm="gateway", error="invalid_token", '
            'error_description="the token is not a well-formed JWT"',
        ),
    ],
    ids=["missing", "basic", "empty-bearer", "too-long", "latin-1", "not-a-jwt"],
)
async def test_bad_authorization_values_are_refused_with_a_challenge(
    authenticator, authorization, error, status, challenge
):
    with pytest.raises(error) as refused:
        await authenticator.authenticate(authorization, POLICY)

    assert refused.value.status == status
    assert refused.value.headers == [(b"www-authenticate", challenge.encode())]


async def test_a_token_without_the_scope_is_forbidden(authenticator, rsa_key):
    token = rsa_key.sign(access_token_claims(scope="orders:write"))

    with pytest.raises(Forbidden) as refused:
        await authenticator.authenticate(bearer(token), POLICY)

    assert refused.value.headers == [
        (
            b"www-authenticate",
            b'Bearer realm="gateway", error="insufficient_scope", '
            b'error_description="the token lacks a required scope", scope="orders:read"',
        )
    ]


async def test_no_keys_yet_is_a_503_not_a_401(jwks_server, rsa_key):
    jwks_server.failing = True
    checker = Authenticator(
        jwks_url=jwks_server.url, issuer=ISSUER, audiences=["orders"]
    )
    await checker.start()
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            await checker.authenticate(
                bearer(rsa_key.sign(access_token_claims())), POLICY
            )
    finally:
        await checker.close()

    assert not checker.ready
    assert refused.value.headers == [(b"retry-after", b"2")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"required": True}, "audience is required when auth is required"),
        (
            {"scopes": ["orders:read"]},
            "scopes, method_scopes and audience need required: true",
        ),
        (
            {"method_scopes": {"POST": ["orders:write"]}},
            "scopes, method_scopes and audience need required: true",
        ),
        (
            {"required": True, "audience": "orders", "method_scopes": {"post": []}},
            "'post' is not a request method in capitals",
        ),
    ],
)
def test_inconsistent_auth_blocks_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        AuthPolicy(**fields)


def test_method_scopes_add_to_the_routes_scopes():
    policy = AuthPolicy(
        required=True,
        audience="orders",
        scopes=("orders",),
        method_scopes={"GET": ("orders:read",), "POST": ("orders:write", "orders")},
    )

    assert policy.scopes_for("GET") == ("orders", "orders:read")
    # HEAD reads what GET reads.
    assert policy.scopes_for("HEAD") == ("orders", "orders:read")
    assert policy.scopes_for("POST") == ("orders", "orders:write")
    assert policy.scopes_for("DELETE") == ("orders",)
    assert POLICY.scopes_for("POST") == ("orders:read",)


def test_a_head_named_in_method_scopes_asks_its_own():
    policy = AuthPolicy(
        required=True,
        audience="orders",
        method_scopes={"GET": ("orders:read",), "HEAD": ("orders:list",)},
    )

    assert policy.scopes_for("HEAD") == ("orders:list",)
