"""CORS at the real gateway: preflights, and headers on every status."""

import httpx
import pytest

from gateway.cors import validate_origins
from tests.support.servers import free_port
from tests.support.tokens import access_token_claims

ORIGIN = "http://localhost:3000"


@pytest.fixture
def gateway(start_gateway, upstream):
    return start_gateway(
        [
            {"prefix": "/api", "upstream": "up", "strip_prefix": True},
            {
                "prefix": "/secure",
                "upstream": "up",
                "strip_prefix": True,
                "auth": {
                    "required": True,
                    "audience": "orders",
                    "scopes": ["orders:read"],
                },
                "rate_limit": "tight",
            },
            {
                "prefix": "/slow",
                "upstream": "up",
                "strip_prefix": True,
                "timeouts": {"read": 0.3},
                "retry": {"attempts": 1},
            },
            {
                "prefix": "/small",
                "upstream": "up",
                "strip_prefix": True,
                "max_body_bytes": 10,
            },
            {"prefix": "/gone", "upstream": "gone", "retry": {"attempts": 1}},
            {"prefix": "/broken", "upstream": "broken", "retry": {"attempts": 1}},
        ],
        {
            "up": upstream.url,
            "gone": f"http://127.0.0.1:{free_port()}",
            "broken": {
                "url": f"http://127.0.0.1:{free_port()}",
                "circuit_breaker": {
                    "window": 1,
                    "minimum_calls": 1,
                    "open_seconds": 60,
                    "max_open_seconds": 60,
                },
            },
        },
        rate_limits={"tight": {"capacity": 2, "refill_per_second": 0.01}},
        env={"GATEWAY_CORS_ORIGINS": f'["{ORIGIN}"]'},
    )


def assert_cors(response: httpx.Response) -> None:
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers.get_list("vary")
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]


def test_a_preflight_is_answered_without_auth_or_rate_limit_tokens(gateway, rsa_key):
    preflights = [
        httpx.options(
            f"{gateway.base_url}/secure/echo",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        for _ in range(5)
    ]
    token = rsa_key.sign(access_token_claims())
    after = [
        httpx.get(
            f"{gateway.base_url}/secure/echo",
            headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}"},
        ).status_code
        for _ in range(3)
    ]

    for preflight in preflights:
        assert preflight.status_code == 204
        assert_cors(preflight)
        assert preflight.headers["access-control-allow-headers"] == (
            "authorization, content-type"
        )
        assert "POST" in preflight.headers["access-control-allow-methods"]
    # Five preflights spent nothing: the bucket of two still admits two.
    assert after == [200, 200, 429]


def test_a_preflight_from_an_unknown_origin_is_refused_without_cors(gateway):
    response = httpx.options(
        f"{gateway.base_url}/api/echo",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "GET",
        },
    )

    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert response.json()["detail"] == (
        "The origin 'https://evil.example' may not call this API."
    )


def test_an_unknown_origin_gets_no_cors_headers(gateway):
    response = httpx.get(
        f"{gateway.base_url}/api/echo", headers={"Origin": "https://evil.example"}
    )

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_every_status_carries_the_cors_headers(gateway, rsa_key):
    valid = rsa_key.sign(access_token_claims())
    unscoped = rsa_key.sign(access_token_claims(scope="orders:write", sub="user-2"))
    base = gateway.base_url
    headers = {"Origin": ORIGIN}

    def get(path: str, **extra: str) -> httpx.Response:
        return httpx.get(base + path, headers={**headers, **extra}, timeout=10)

    httpx.get(base + "/broken/x")  # one failure opens its breaker
    answers = {
        200: get("/api/echo"),
        400: get("/secure/echo", Authorization="Basic eA=="),
        401: get("/secure/echo"),
        403: get("/secure/echo", Authorization=f"Bearer {unscoped}"),
        404: get("/nothing-routes-here"),
        413: httpx.post(base + "/small/upload", content=b"x" * 100, headers=headers),
        502: get("/gone/x"),
        503: get("/broken/x"),
        504: get("/slow/slow?seconds=3"),
    }
    get("/secure/echo", Authorization=f"Bearer {valid}")
    get("/secure/echo", Authorization=f"Bearer {valid}")
    answers[429] = get("/secure/echo", Authorization=f"Bearer {valid}")

    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        assert_cors(response)


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (["*"], "'*': wildcards are not allowed"),
        (["https://*.example.com"], "wildcards are not allowed"),
        (["https://app.example.com/"], "is not an origin"),
        (["app.example.com"], "is not an origin"),
    ],
)
def test_origins_that_cannot_work_are_refused(origins, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        validate_origins(origins)
