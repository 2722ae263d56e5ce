"""The proxy's metrics, read from the registry of a gateway app in this process
that forwards to a real upstream process."""

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from gateway.app import create_app
from gateway.settings import Settings
from tests.support.servers import free_port


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def client(tmp_path, upstream):
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        yaml.safe_dump(
            {
                "upstreams": {
                    "metered": {"url": upstream.url},
                    "nowhere": {"url": f"http://127.0.0.1:{free_port()}"},
                },
                "routes": [
                    {
                        "prefix": "/m",
                        "upstream": "metered",
                        "strip_prefix": True,
                        "timeouts": {"read": 0.3},
                        "retry": {"attempts": 1},
                    },
                    {"prefix": "/n", "upstream": "nowhere", "retry": {"attempts": 1}},
                ],
            }
        )
    )
    app = create_app(Settings(routes_file=routes))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        yield client


async def test_calls_errors_and_timeouts_are_counted_per_upstream(client):
    calls = sample(
        "gateway_upstream_request_duration_seconds_count", upstream="metered"
    )
    timeouts = sample(
        "gateway_upstream_errors_total", upstream="metered", kind="timeout"
    )
    statuses = sample(
        "gateway_upstream_errors_total", upstream="metered", kind="status"
    )
    connects = sample(
        "gateway_upstream_errors_total", upstream="nowhere", kind="connect"
    )

    assert (await client.get("/m/echo")).status_code == 200
    assert (await client.get("/m/status/503")).status_code == 503
    assert (await client.get("/m/slow?seconds=2")).status_code == 504
    assert (await client.get("/n/x")).status_code == 502

    assert (
        sample("gateway_upstream_request_duration_seconds_count", upstream="metered")
        == calls + 3
    )
    assert (
        sample("gateway_upstream_errors_total", upstream="metered", kind="timeout")
        == timeouts + 1
    )
    assert (
        sample("gateway_upstream_errors_total", upstream="metered", kind="status")
        == statuses + 1
    )
    assert (
        sample("gateway_upstream_errors_total", upstream="nowhere", kind="connect")
        == connects + 1
    )
    assert sample("gateway_circuit_state", upstream="metered") == 0
