import subprocess
import sys
from pathlib import Path

import pytest

from gateway.routing import load_route_table
from gateway.settings import DEFAULT_ROUTES_FILE
from servicekit.config import ConfigurationError

ROUTES = """
upstreams:
  identity: {url: "http://127.0.0.1:8000"}
  orders: {url: "http://127.0.0.1:8001"}
routes:
  - {prefix: /auth, upstream: identity, strip_prefix: true}
  - {prefix: /orders, upstream: orders}
  - {prefix: /orders/admin, upstream: identity}
"""


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    return load_route_table(path)


@pytest.mark.parametrize(
    ("path", "upstream", "upstream_path"),
    [
        ("/auth", "identity", "/"),
        ("/auth/token", "identity", "/token"),
        ("/auth/.well-known/jwks.json", "identity", "/.well-known/jwks.json"),
        ("/orders", "orders", "/orders"),
        ("/orders/42", "orders", "/orders/42"),
        ("/orders/admin/x", "identity", "/orders/admin/x"),
    ],
)
def test_the_longest_matching_prefix_wins(table, path, upstream, upstream_path):
    route = table.route_for(path)

    assert route is not None
    assert route.upstream == upstream
    assert route.upstream_path(path) == upstream_path


@pytest.mark.parametrize("path", ["/authx", "/ordersx/1", "/", "/healthz"])
def test_a_prefix_only_matches_whole_segments(table, path):
    assert table.route_for(path) is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            "upstreams: {a: {url: 'http://x'}}\nroutes: [{prefix: /a, upstream: b}]",
            "routes[0] (/a): upstream 'b' is not one of ['a']",
        ),
        (
            "upstreams: {a: {url: 'http://x'}}\nroutes: [{prefix: /a, upstream: a, stripp: true}]",
            "routes[0] (/a).stripp: Extra inputs are not permitted",
        ),
        (
            "upstreams: {a: {url: 'http://x'}}\nroutes: [{prefix: nope, upstream: a}]",
            "routes[0] (nope).prefix: String should match pattern",
        ),
        (
            "upstreams: {a: {url: 'not a url'}}\nroutes: []",
            "upstreams.a.url: Input should be a valid URL",
        ),
        ("routes: [", "cannot read routes file"),
    ],
)
def test_an_invalid_routes_file_names_the_route_and_field(tmp_path, document, message):
    path = tmp_path / "routes.yaml"
    path.write_text(document)

    with pytest.raises(ConfigurationError) as raised:
        load_route_table(path)

    assert message in str(raised.value)


def test_an_invalid_routes_file_stops_the_gateway(tmp_path: Path):
    path = tmp_path / "routes.yaml"
    path.write_text("upstreams: {}\nroutes: [{prefix: /a, upstream: missing}]")

    finished = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={"PATH": "/usr/bin:/bin", "GATEWAY_ROUTES_FILE": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert finished.stderr.startswith(
        "gateway: invalid configuration: GATEWAY_ROUTES_FILE:"
    )
    assert "routes[0] (/a): upstream 'missing' is not one of []" in finished.stderr


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            "upstreams: {a: {url: 'http://x'}}\n"
            "routes: [{prefix: /a, upstream: a, auth: {required: true}}]",
            "routes[0] (/a).auth: Value error, audience is required when auth is "
            "required (the API identifier the token's aud must contain, e.g. 'orders')",
        ),
        (
            "upstreams: {a: {url: 'http://x'}}\n"
            "routes: [{prefix: /a, upstream: a, rate_limit: fast}]",
            "routes[0] (/a).rate_limit: policy 'fast' is not one of []",
        ),
        (
            "upstreams: {a: {url: 'http://x'}}\n"
            "routes: [{prefix: /a, upstream: a, timeouts: {read: 0}}]",
            "routes[0] (/a).timeouts.read: Input should be greater than 0",
        ),
        (
            "upstreams: {a: {url: 'http://x'}}\n"
            "routes: [{prefix: /a, upstream: a, retry: {attempts: 9}}]",
            "routes[0] (/a).retry.attempts: Input should be less than or equal to 5",
        ),
        (
            "upstreams: {a: {url: 'http://x', circuit_breaker: {window: 2, "
            "minimum_calls: 5}}}\nroutes: []",
            "upstreams.a.circuit_breaker: Value error, minimum_calls (5) cannot "
            "exceed window (2)",
        ),
        (
            "rate_limits: {default: {capacity: 0, refill_per_second: 1}}\n"
            "upstreams: {a: {url: 'http://x'}}\nroutes: []",
            "rate_limits.default.capacity: Input should be greater than or equal to 1",
        ),
    ],
    ids=["auth-audience", "unknown-policy", "timeout", "attempts", "breaker", "policy"],
)
def test_invalid_new_fields_name_the_route_and_field(tmp_path, document, message):
    path = tmp_path / "routes.yaml"
    path.write_text(document)

    with pytest.raises(ConfigurationError) as raised:
        load_route_table(path)

    assert message in str(raised.value)


def test_the_default_routes_file_loads_and_protects_orders():
    table = load_route_table(DEFAULT_ROUTES_FILE)

    orders = table.route_for("/orders/1")
    auth = table.route_for("/auth/token")
    assert orders is not None
    assert orders.auth.required
    assert orders.auth.audience == "orders"
    assert auth is not None
    assert not auth.auth.required
    assert auth.strip_prefix


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_routes_that_need_tokens_need_an_issuer():
    finished = _start({})

    assert finished.returncode == 2
    assert finished.stderr.startswith(
        "gateway: invalid configuration: GATEWAY_ISSUER: Value error, expected the "
        "issuer URL tokens carry (e.g. 'http://localhost:8080/auth'): routes of "
    )


def test_a_wildcard_cors_origin_stops_the_gateway():
    finished = _start(
        {
            "GATEWAY_ISSUER": "http://localhost:8080/auth",
            "GATEWAY_CORS_ORIGINS": '["*"]',
        }
    )

    assert finished.returncode == 2
    assert (
        "GATEWAY_CORS_ORIGINS: Value error, '*': wildcards are not allowed, because "
        "the gateway allows credentials; list each origin"
    ) in finished.stderr


def test_auth_none_is_the_omitted_block(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text(
        "upstreams: {a: {url: 'http://x'}}\nroutes: [{prefix: /a, upstream: a, auth: none}]"
    )

    (route,) = load_route_table(path).routes

    assert not route.auth.required
