import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic_settings import SettingsConfigDict

from servicekit.application import ServiceSettings, service_app
from servicekit.config import load_settings
from servicekit.metrics import (
    DURATION_BUCKETS,
    EventLoopLag,
    HttpMetrics,
    MetricsServer,
    lag_histogram,
)
from servicekit.server import serve


@asynccontextmanager
async def _no_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def release() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
def metered_app(registry: CollectorRegistry, release: asyncio.Event) -> FastAPI:
    app = service_app(
        title="test",
        version="0",
        description="test",
        lifespan=_no_lifespan,
        readiness={},
        metrics=HttpMetrics(registry),
    )

    @app.get("/widgets/{widget_id}")
    async def widget(widget_id: int) -> dict[str, int]:
        return {"id": widget_id}

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await release.wait()
        return {"status": "done"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


@pytest.fixture
async def client(metered_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=metered_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def requests(
    registry: CollectorRegistry, method: str, route: str, status: str
) -> float:
    value = registry.get_sample_value(
        "http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


async def test_requests_are_counted_by_route_template_not_raw_path(client, registry):
    await client.get("/widgets/1")
    await client.get("/widgets/2")

    assert requests(registry, "GET", "/widgets/{widget_id}", "200") == 2
    assert requests(registry, "GET", "/widgets/1", "200") == 0


async def test_unmatched_paths_share_one_label(client, registry):
    await client.get("/no/such/thing")
    await client.get("/another-one")

    assert requests(registry, "GET", "unmatched", "404") == 2


async def test_unknown_methods_are_folded_into_other(client, registry):
    await client.request("BREW", "/widgets/1")
    await client.request("PURGE", "/widgets/1")

    assert requests(registry, "other", "/widgets/{widget_id}", "405") == 2
    assert requests(registry, "BREW", "/widgets/{widget_id}", "405") == 0


async def test_validation_errors_and_crashes_keep_their_status(client, registry):
    await client.get("/widgets/not-a-number")
    await client.get("/boom")

    assert requests(registry, "GET", "/widgets/{widget_id}", "422") == 1
    assert requests(registry, "GET", "/boom", "500") == 1


async def test_durations_land_in_the_histogram_of_the_route(client, registry):
    await client.get("/widgets/7")

    labels = {"method": "GET", "route": "/widgets/{widget_id}"}
    count = registry.get_sample_value("http_request_duration_seconds_count", labels)
    total = registry.get_sample_value("http_request_duration_seconds_sum", labels)
    largest = registry.get_sample_value(
        "http_request_duration_seconds_bucket", {**labels, "le": "+Inf"}
    )
    assert count == 1
    assert largest == 1
    assert total is not None
    assert 0 < total < DURATION_BUCKETS[-1]


async def test_in_flight_counts_requests_until_they_are_answered(
    client, registry, release
):
    pending = asyncio.create_task(client.get("/slow"))
    for _ in range(200):
        if registry.get_sample_value("http_requests_in_flight") == 1:
            break
        await asyncio.sleep(0.01)
    assert registry.get_sample_value("http_requests_in_flight") == 1

    release.set()
    assert (await pending).status_code == 200
    assert registry.get_sample_value("http_requests_in_flight") == 0


async def test_a_blocked_event_loop_shows_as_lag(registry):
    lag = EventLoopLag(lag_histogram(registry), interval=0.01)

    def sample(name: str, **labels: str) -> float:
        value = registry.get_sample_value(f"event_loop_lag_seconds_{name}", labels)
        assert value is not None
        return float(value)

    lag.start()
    try:
        await asyncio.sleep(0.1)
        idle_ticks = sample("count")
        time.sleep(0.2)  # noqa: ASYNC251 - the blocking call a bug would make
        await asyncio.sleep(0.05)
    finally:
        lag.stop()
    stopped_at = sample("count")
    await asyncio.sleep(0.05)

    assert idle_ticks >= 3
    # The tick due during the blocking call ran at least 0.19 s late; the
    # ticks of the idle loop were on time (within the timers' resolution).
    assert sample("bucket", le="0.1") < stopped_at
    assert sample("bucket", le="0.025") >= idle_ticks - 1
    assert sample("sum") >= 0.19
    assert sample("count") == stopped_at


def test_the_metrics_server_serves_the_registry_and_releases_its_port(registry):
    HttpMetrics(registry).observe("GET", "/x", 200, 0.01)
    server = MetricsServer("127.0.0.1", _free_port(), registry)

    server.start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()

    assert response.status_code == 200
    assert (
        'http_requests_total{method="GET",route="/x",status="200"} 1.0' in response.text
    )
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("127.0.0.1", server.port))


def test_the_metrics_port_is_the_service_port_plus_1000(monkeypatch):
    class Settings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="DEMO_")

    monkeypatch.setenv("DEMO_PORT", "8080")

    assert load_settings(Settings, "demo").metrics_port == 9080


def test_a_port_without_room_for_the_metrics_port_is_refused(monkeypatch, capsys):
    class Settings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="DEMO_")

    monkeypatch.setenv("DEMO_PORT", "65000")

    with pytest.raises(SystemExit) as exited:
        load_settings(Settings, "demo")

    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "demo: invalid configuration: DEMO_PORT: Value error, the metrics port is "
        "the port + 1000, so the port must be at most 64535 (given '65000')\n"
    )


def test_a_taken_metrics_port_stops_the_service_before_it_serves(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exited:
            serve(FastAPI(), host="127.0.0.1", port=_free_port(), metrics_port=port)

    assert exited.value.code == 1
    assert [r.getMessage() for r in caplog.records] == ["metrics port unavailable"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
