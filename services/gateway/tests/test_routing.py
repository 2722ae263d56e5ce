import subprocess
import sys
from pathlib import Path

import pytest

from gateway.routing import load_route_table
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
