"""Tokens checked by the real gateway process against a real JWKS endpoint."""

import threading
import time

import httpx
import pytest

from tests.support.tokens import SigningKey, access_token_claims

ROUTES = [
    {
        "prefix": "/orders",
        "upstream": "up",
        "strip_prefix": True,
        "auth": {"required": True, "audience": "orders", "scopes": ["orders:read"]},
    },
    {"prefix": "/public", "upstream": "up", "strip_prefix": True},
    {
        "prefix": "/shop",
        "upstream": "up",
        "strip_prefix": True,
        "auth": {
            "required": True,
            "audience": "orders",
            "method_scopes": {"GET": ["orders:read"], "POST": ["orders:write"]},
        },
    },
]


@pytest.fixture
def gateway(start_gateway, upstream):
    return start_gateway(ROUTES, {"up": upstream.url})


def test_a_valid_token_passes_and_reaches_the_upstream_untouched(gateway, rsa_key):
    token = rsa_key.sign(access_token_claims())

    response = httpx.get(
        f"{gateway.base_url}/orders/echo", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    headers = dict((k.lower(), v) for k, v in response.json()["headers"])
    assert headers["authorization"] == f"Bearer {token}"


@pytest.mark.parametrize(
    ("headers", "status", "challenge", "detail"),
    [
        (
            {},
            401,
            'Bearer realm="gateway"',
            "This route needs a bearer token in the Authorization header.",
        ),
        (
            {"Authorization": "Basic dXNlcjpwYXNz"},
            400,
            'Bearer realm="gateway", error="invalid_request", error_description='
            "\"the Authorization header must be 'Bearer <token>' (RFC 6750 section 2.1)\"",
            "The Authorization header is not a bearer token: the Authorization header "
            "must be 'Bearer <token>' (RFC 6750 section 2.1).",
        ),
        (
            {"Authorization": "Bearer abc.def.ghi"},
            401,
            'Bearer realm="gateway", error="invalid_token", '
            'error_description="the token is not a well-formed JWT"',
            "The bearer token was rejected: the token is not a well-formed JWT.",
        ),
    ],
    ids=["missing", "basic", "garbage"],
)
def test_refusals_carry_an_rfc_6750_challenge(
    gateway, headers, status, challenge, detail
):
    response = httpx.get(f"{gateway.base_url}/orders/echo", headers=headers)

    assert response.status_code == status
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == detail


def test_an_expired_token_and_a_missing_scope(gateway, rsa_key):
    expired = rsa_key.sign(
        access_token_claims(iat=int(time.time()) - 600, exp=int(time.time()) - 300)
    )
    unscoped = rsa_key.sign(access_token_claims(scope="orders:write"))

    late = httpx.get(
        f"{gateway.base_url}/orders/echo",
        headers={"Authorization": f"Bearer {expired}"},
    )
    short = httpx.get(
        f"{gateway.base_url}/orders/echo",
        headers={"Authorization": f"Bearer {unscoped}"},
    )

    assert late.status_code == 401
    assert late.headers["www-authenticate"] == (
        'Bearer realm="gateway", error="invalid_token", '
        'error_description="the token has expired"'
    )
    assert short.status_code == 403
    assert short.headers["www-authenticate"] == (
        'Bearer realm="gateway", error="insufficient_scope", '
        'error_description="the token lacks a required scope", scope="orders:read"'
    )


@pytest.mark.parametrize(
    ("method", "scope", "status"),
    [
        ("GET", "orders:read", 200),
        ("HEAD", "orders:read", 200),
        ("POST", "orders:read", 403),
        ("POST", "orders:write", 200),
        ("GET", "orders:write", 403),
        # A method the route names no scopes for needs only a valid token.
        ("DELETE", "profile", 200),
    ],
)
def test_method_scopes_choose_what_each_method_needs(
    gateway, rsa_key, method, scope, status
):
    token = rsa_key.sign(access_token_claims(scope=scope))

    response = httpx.request(
        method,
        f"{gateway.base_url}/shop/echo",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == status
    if status == 403:
        needed = "orders:read" if method == "GET" else "orders:write"
        assert response.headers["www-authenticate"] == (
            'Bearer realm="gateway", error="insufficient_scope", '
            f'error_description="the token lacks a required scope", scope="{needed}"'
        )
        assert response.json()["detail"] == (
            f"The token lacks a scope this route needs: {needed}."
        )


def test_a_public_route_needs_no_token(gateway):
    assert httpx.get(f"{gateway.base_url}/public/echo").status_code == 200


def test_a_key_rotation_fails_no_request(gateway, jwks_server, rsa_key):
    new_key = SigningKey.generate("RS256")
    signer = {"key": rsa_key}
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=gateway.base_url) as client:
            while not stop.is_set():
                token = signer["key"].sign(access_token_claims())
                response = client.get(
                    "/orders/echo", headers={"Authorization": f"Bearer {token}"}
                )
                statuses.append(response.status_code)

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    fetches = jwks_server.fetches
    # identity's order: publish the new key first, then sign with it.
    jwks_server.publish(new_key)
    signer["key"] = new_key
    time.sleep(1.0)
    stop.set()
    for worker in workers:
        worker.join()

    assert statuses
    assert set(statuses) == {200}
    # Four clients met the new kid at once: one refetch served them all.
    assert jwks_server.fetches == fetches + 1
    new_token = new_key.sign(access_token_claims())
    assert (
        httpx.get(
            f"{gateway.base_url}/orders/echo",
            headers={"Authorization": f"Bearer {new_token}"},
        ).status_code
        == 200
    )


def test_a_jwks_outage_is_served_with_the_cached_keys(
    start_gateway, upstream, jwks_server, rsa_key
):
    gateway = start_gateway(
        ROUTES,
        {"up": upstream.url},
        env={
            "GATEWAY_JWKS_TTL_SECONDS": "0.2",
            "GATEWAY_JWKS_REFETCH_COOLDOWN_SECONDS": "0",
        },
    )
    jwks_server.failing = True
    fetches = jwks_server.fetches

    statuses = []
    for _ in range(5):
        time.sleep(0.3)
        token = rsa_key.sign(access_token_claims())  # a new token each time: no cache
        statuses.append(
            httpx.get(
                f"{gateway.base_url}/orders/echo",
                headers={"Authorization": f"Bearer {token}"},
            ).status_code
        )

    assert statuses == [200] * 5
    assert jwks_server.fetches > fetches  # it tried to refresh, and failed
    failed = [
        line for line in gateway.log_lines() if line["event"] == "jwks refresh failed"
    ]
    assert failed
    assert failed[0]["kept_keys"] == 2


def test_readiness_waits_for_the_first_jwks_fetch(
    start_gateway, upstream, jwks_server, rsa_key
):
    jwks_server.failing = True
    gateway = start_gateway(ROUTES, {"up": upstream.url}, wait_ready=False)

    not_ready = httpx.get(f"{gateway.base_url}/readyz")
    token = rsa_key.sign(access_token_claims())
    early = httpx.get(
        f"{gateway.base_url}/orders/echo", headers={"Authorization": f"Bearer {token}"}
    )
    jwks_server.failing = False
    deadline = time.monotonic() + 15
    while httpx.get(f"{gateway.base_url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.2)
    late = httpx.get(
        f"{gateway.base_url}/orders/echo", headers={"Authorization": f"Bearer {token}"}
    )

    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["jwks"] == (
        "RuntimeError: the issuer's JWKS has not been fetched yet"
    )
    assert early.status_code == 503
    assert early.headers["retry-after"] == "2"
    assert late.status_code == 200


def test_tokens_with_unknown_keys_do_not_storm_the_jwks(gateway, jwks_server):
    stranger = SigningKey.generate("RS256")
    fetches = jwks_server.fetches

    answers = [
        httpx.get(
            f"{gateway.base_url}/orders/echo",
            headers={"Authorization": f"Bearer {stranger.sign(access_token_claims())}"},
        )
        for _ in range(20)
    ]

    assert {a.status_code for a in answers} == {401}
    assert answers[0].headers["www-authenticate"] == (
        'Bearer realm="gateway", error="invalid_token", error_description='
        f"\"the token's key {stranger.kid!r} is not one of the issuer's keys\""
    )
    # One refetch, then the cooldown refuses unknown kids without fetching.
    assert jwks_server.fetches == fetches + 1
