"""No secret a client sends reaches any log line of any service, or any span.

Each flow in :data:`FLOWS` drives real traffic through the running platform
and returns the secret values it sent (tokens, codes, passwords, client
secrets). The test then scans every line all three services wrote, and every
span they exported, for each value. Besides requests made up to carry secrets,
the flows are the real ones (tests.support.flows): a client-credentials grant,
a code flow with PKCE, refresh, userinfo and revocation, and the orders API
with a token, through the gateway. A new flow is one more function in ``FLOWS``.
"""

import base64
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_traces import tracing_environment
from tests.support.flows import (
    GUARDED_ORDERS,
    client_credentials_token,
    code_flow,
    flows_platform,
    orders_flow,
)
from tests.support.otlp import OtlpReceiver
from tests.support.processes import Platform
from tests.support.servers import free_port
from tests.support.tokens import SigningKey, access_token_claims

pytestmark = pytest.mark.e2e

Flow = Callable[[Platform], set[str]]


def secret() -> str:
    """A value unique enough that finding it anywhere means it leaked."""
    return secrets.token_urlsafe(24)


def bearer_tokens_in_headers(platform: Platform) -> set[str]:
    token = SigningKey.generate().sign(access_token_claims())
    with httpx.Client(base_url=platform.public_url) as client:
        for path in ("/orders/mine", GUARDED_ORDERS, "/auth/userinfo", "/nothing-here"):
            response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code in (401, 404), (path, response.text)
    return {token}


def secrets_in_query_strings(platform: Platform) -> set[str]:
    code, client_secret, password, access_token, refresh_token = (
        secret() for _ in range(5)
    )
    queries = {
        "/auth/authorize": {"code": code, "client_secret": client_secret},
        "/auth/login": {"password": password},
        "/orders/mine": {"access_token": access_token},
        "/nothing-here": {"refresh_token": refresh_token},
    }
    with httpx.Client(base_url=platform.public_url) as client:
        for path, params in queries.items():
            # The routes exist now: what matters is an answer, not which one.
            status = client.get(path, params=params).status_code
            assert 400 <= status < 500, (path, status)
    # Straight to a service too, as a sidecar or a probe would.
    assert httpx.get(
        f"{platform.identity.base_url}/token", params={"code": code}
    ).status_code in (404, 405)
    return {code, client_secret, password, access_token, refresh_token}


def credentials_in_bodies(platform: Platform) -> set[str]:
    password, client_secret, refresh_token, code, verifier = (
        secret() for _ in range(5)
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": "web",
        "client_secret": client_secret,
        "refresh_token": refresh_token,
        "password": password,
    }
    with httpx.Client(base_url=platform.public_url) as client:
        for response in (
            client.post("/auth/token", data=form),
            client.post("/auth/login", data=form),
            client.post("/orders", json=form),
        ):
            assert 400 <= response.status_code < 500, response.text
    return {password, client_secret, refresh_token, code, verifier}


def basic_credentials_and_cookies(platform: Platform) -> set[str]:
    client_secret, session = secret(), secret()
    basic = base64.b64encode(f"web:{client_secret}".encode()).decode()
    with httpx.Client(base_url=platform.public_url) as client:
        response = client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}", "Cookie": f"session={session}"},
        )
        assert response.status_code == 401, response.text
    return {client_secret, basic, session}


def secrets_towards_an_unreachable_upstream(platform: Platform) -> set[str]:
    code = secret()
    with httpx.Client(base_url=platform.public_url) as client:
        assert client.get("/dead/callback", params={"code": code}).status_code == 502
    return {code}


def client_credentials_grant(platform: Platform) -> set[str]:
    token = client_credentials_token(platform, "orders:read orders:write")
    basic = base64.b64encode(
        f"{platform.client_id}:{platform.client_secret}".encode()
    ).decode()
    return {token, platform.client_secret, basic}


def code_flow_with_pkce(platform: Platform) -> set[str]:
    flow = code_flow(platform)
    with httpx.Client(base_url=platform.public_url) as client:
        listed = client.get(
            "/orders",
            headers={"Authorization": f"Bearer {flow.tokens['access_token']}"},
        )
        assert listed.status_code == 200, listed.text
    return flow.secrets()


def orders_with_a_token(platform: Platform) -> set[str]:
    token = client_credentials_token(platform, "orders:read orders:write")
    orders_flow(platform, token, GUARDED_ORDERS)
    orders_flow(platform, token)
    return {token}


FLOWS: dict[str, Flow] = {
    "bearer tokens in headers": bearer_tokens_in_headers,
    "secrets in query strings": secrets_in_query_strings,
    "credentials in bodies": credentials_in_bodies,
    "basic credentials and cookies": basic_credentials_and_cookies,
    "secrets towards an unreachable upstream": secrets_towards_an_unreachable_upstream,
    "client credentials grant": client_credentials_grant,
    "code flow with PKCE": code_flow_with_pkce,
    "orders with a token": orders_with_a_token,
}


@pytest.fixture
def hygiene_platform(tmp_path: Path, otlp_receiver: OtlpReceiver) -> Iterator[Platform]:
    with flows_platform(
        tmp_path,
        env=tracing_environment(otlp_receiver),
        extra_upstreams={"dead": f"http://127.0.0.1:{free_port()}"},
        extra_routes=[{"prefix": "/dead", "upstream": "dead"}],
    ) as running:
        yield running


def test_no_secret_appears_in_any_log_line_or_span(hygiene_platform, otlp_receiver):
    sent: dict[str, str] = {}
    for flow_name, flow in FLOWS.items():
        for value in flow(hygiene_platform):
            sent[value] = flow_name
    # Stopping writes every pending line and exports every buffered span.
    for service in reversed(hygiene_platform.services()):
        service.stop()
    requests_logged = sum(
        line["event"] == "request" for line in hygiene_platform.gateway.log_lines()
    )
    assert requests_logged >= 30, "the flows did not reach the gateway"
    otlp_receiver.wait_for(
        lambda spans: (
            sum(s.service == "gateway" and s.kind == "server" for s in spans)
            >= requests_logged
        )
    )

    leaks: list[str] = []
    for service in hygiene_platform.services():
        for number, line in enumerate(service.log_path.read_text().splitlines(), 1):
            leaks.extend(
                f"{service.name}.log:{number} holds a secret of {flow!r}"
                for value, flow in sent.items()
                if value in line
            )
    for span in otlp_receiver.spans:
        leaks.extend(
            f"{span.service} span {span.name!r} holds a secret of {flow!r}"
            for value, flow in sent.items()
            if value in repr(span.attributes) or value in span.name
        )
    assert leaks == []
