"""Timeouts, the circuit breaker and the retry budget, against real processes."""

import socket
import time

import httpx


def test_an_upstream_slower_than_the_read_timeout_is_a_504(start_gateway, upstream):
    gateway = start_gateway(
        [
            {
                "prefix": "/api",
                "upstream": "up",
                "strip_prefix": True,
                "timeouts": {"connect": 1, "read": 0.5, "total": 10},
                "retry": {"attempts": 1},
            }
        ],
        {"up": upstream.url},
    )

    started = time.monotonic()
    response = httpx.get(f"{gateway.base_url}/api/slow?seconds=5", timeout=10)

    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The upstream 'up' did not answer in time."
    assert time.monotonic() - started < 4


def test_the_total_timeout_bounds_the_whole_exchange(start_gateway, upstream):
    gateway = start_gateway(
        [
            {
                "prefix": "/api",
                "upstream": "up",
                "strip_prefix": True,
                "timeouts": {"connect": 1, "read": 30, "total": 0.5},
            }
        ],
        {"up": upstream.url},
    )

    response = httpx.get(f"{gateway.base_url}/api/slow?seconds=5", timeout=10)

    assert response.status_code == 504


def test_an_upstream_that_does_not_accept_is_a_504_after_the_connect_timeout(
    start_gateway,
):
    # A listener whose backlog is full: the kernel drops further SYNs, so a
    # connection attempt hangs as it does towards a dead host.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    gateway = start_gateway(
        [
            {
                "prefix": "/stuck",
                "upstream": "stuck",
                "timeouts": {"connect": 0.5, "read": 30, "total": 60},
                "retry": {"attempts": 1},
            }
        ],
        {"stuck": f"http://127.0.0.1:{port}"},
    )

    started = time.monotonic()
    response = httpx.get(f"{gateway.base_url}/stuck/x", timeout=20)

    assert response.status_code == 504, (response.headers, response.text[:300])
    assert response.json()["detail"] == "The upstream 'stuck' did not answer in time."
    assert time.monotonic() - started < 10
    for filler in fillers:
        filler.close()
    listener.close()


def _transitions(gateway):
    return [
        (line["from_state"], line["to_state"], line.get("open_seconds"))
        for line in gateway.log_lines()
        if line["event"].startswith("circuit ")
    ]


def test_the_breaker_opens_half_opens_and_closes_against_a_stopped_upstream(
    start_gateway, upstream
):
    gateway = start_gateway(
        [
            {
                "prefix": "/api",
                "upstream": "up",
                "strip_prefix": True,
                "retry": {"attempts": 1},
            }
        ],
        {
            "up": {
                "url": upstream.url,
                "circuit_breaker": {
                    "window": 4,
                    "minimum_calls": 4,
                    "failure_rate": 0.5,
                    "open_seconds": 1,
                    "max_open_seconds": 8,
                    "half_open_probes": 1,
                },
            }
        },
    )
    url = f"{gateway.base_url}/api/echo"
    assert httpx.get(url).status_code == 200

    upstream.stop()
    failures = [httpx.get(url).status_code for _ in range(3)]
    refused = httpx.get(url)

    assert failures == [502, 502, 502]
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["detail"] == (
        "The upstream 'up' is failing; the gateway stopped calling it for a while."
    )

    # Half-open: one probe goes through, still fails, and the breaker reopens
    # for twice as long.
    time.sleep(1.1)
    assert httpx.get(url).status_code == 502
    reopened = httpx.get(url)
    assert reopened.status_code == 503
    assert reopened.headers["retry-after"] == "2"

    upstream.start()
    time.sleep(2.1)
    assert httpx.get(url).status_code == 200  # the probe succeeds: closed
    assert [httpx.get(url).status_code for _ in range(3)] == [200, 200, 200]

    assert _transitions(gateway) == [
        ("closed", "open", 1.0),
        ("open", "half_open", None),
        ("half_open", "open", 2.0),
        ("open", "half_open", None),
        ("half_open", "closed", None),
    ]


def test_configured_5xx_statuses_count_as_failures(start_gateway, upstream):
    gateway = start_gateway(
        [
            {
                "prefix": "/api",
                "upstream": "up",
                "strip_prefix": True,
                "retry": {"attempts": 1},
            }
        ],
        {
            "up": {
                "url": upstream.url,
                "circuit_breaker": {
                    "window": 2,
                    "minimum_calls": 2,
                    "failure_statuses": [500],
                    "failure_rate": 1,
                    "open_seconds": 30,
                    "max_open_seconds": 30,
                },
            }
        },
    )

    # 503 is not listed: passed through, and the breaker stays closed.
    assert [
        httpx.get(f"{gateway.base_url}/api/status/503").status_code for _ in range(3)
    ] == [503] * 3
    assert [
        httpx.get(f"{gateway.base_url}/api/status/500").status_code for _ in range(2)
    ] == [500] * 2

    assert httpx.get(f"{gateway.base_url}/api/echo").status_code == 503
    assert upstream.hits().get("/echo", 0) == 0


def test_retries_stay_within_the_budget(start_gateway, upstream):
    gateway = start_gateway(
        [
            {
                "prefix": "/api",
                "upstream": "up",
                "strip_prefix": True,
                "retry": {
                    "attempts": 3,
                    "backoff_seconds": 0,
                    "budget_ratio": 0.1,
                    "budget_reserve": 2,
                },
            }
        ],
        {"up": {"url": upstream.url, "circuit_breaker": {"failure_statuses": []}}},
    )

    answers = [
        httpx.get(f"{gateway.base_url}/api/status/503").status_code for _ in range(30)
    ]
    posts = [
        httpx.post(f"{gateway.base_url}/api/status/503").status_code for _ in range(5)
    ]

    # The upstream's own 503 reaches the client once retries are spent.
    assert answers == [503] * 30
    assert posts == [503] * 5
    hits = upstream.hits()["/status/503"]
    retries = hits - 30 - 5
    # The reserve (2) is spent at once, then one retry per ten requests at most;
    # POSTs are never retried.
    assert 2 <= retries <= 2 + 0.1 * 30


def test_an_idempotent_request_is_retried_when_the_upstream_refuses_connections(
    start_gateway, upstream
):
    gateway = start_gateway(
        [
            {
                "prefix": "/api",
                "upstream": "up",
                "strip_prefix": True,
                "retry": {"attempts": 2, "backoff_seconds": 0.01},
            }
        ],
        {"up": upstream.url},
    )
    upstream.stop()

    response = httpx.get(f"{gateway.base_url}/api/echo")

    assert response.status_code == 502
    retried = [
        line for line in gateway.log_lines() if line["event"] == "upstream retried"
    ]
    assert [line["attempt"] for line in retried] == [2]


def test_a_failed_idempotent_request_is_retried_and_served(start_gateway, upstream):
    gateway = start_gateway(
        [
            {
                "prefix": "/api",
                "upstream": "up",
                "strip_prefix": True,
                "retry": {"attempts": 3, "backoff_seconds": 0.01},
            }
        ],
        {"up": upstream.url},
    )

    fetched = httpx.get(f"{gateway.base_url}/api/flaky/a?failures=2")
    posted = httpx.post(f"{gateway.base_url}/api/flaky/b?failures=1")

    assert fetched.status_code == 200
    assert fetched.text == "served a on try 3"
    assert posted.status_code == 503
    assert upstream.hits()["/flaky/b"] == 1
