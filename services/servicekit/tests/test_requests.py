import json
import os

import pytest

from servicekit.requests import new_request_id


async def test_a_well_formed_inbound_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "req-42.a:b_c"})

    assert response.headers["x-request-id"] == "req-42.a:b_c"


@pytest.mark.parametrize(
    "inbound",
    [
        pytest.param("x" * 129, id="too-long"),
        pytest.param("bad id", id="space"),
        pytest.param("<script>", id="markup"),
        pytest.param("", id="empty"),
        pytest.param("-leading-dash", id="leading-punctuation"),
    ],
)
async def test_a_malformed_request_id_is_replaced_not_echoed(client, inbound):
    response = await client.get("/healthz", headers={"X-Request-ID": inbound})

    echoed = response.headers["x-request-id"]
    assert echoed != inbound
    assert len(echoed) == 32
    assert all(c in "0123456789abcdef" for c in echoed)


async def test_without_an_inbound_id_each_request_gets_its_own(client):
    first = await client.get("/healthz")
    second = await client.get("/healthz")

    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_the_access_log_line_has_route_template_and_no_query(client, json_logs):
    await client.post(
        "/widgets?token=secret-value",
        json={"name": "a", "count": 1},
        headers={"X-Request-ID": "access-1"},
    )

    access = [json.loads(line) for line in json_logs if '"request"' in line]
    assert len(access) == 1
    line = access[0]
    assert line["event"] == "request"
    assert line["method"] == "POST"
    assert line["route"] == "/widgets"
    assert line["status"] == 200
    assert line["request_id"] == "access-1"
    assert isinstance(line["duration_ms"], float)
    assert "secret-value" not in json.dumps(access)


async def test_every_log_line_is_json_with_the_standard_fields(client, json_logs):
    await client.get("/boom", headers={"X-Request-ID": "shape-1"})

    served = [json.loads(raw) for raw in json_logs if '"servicekit.' in raw]
    assert len(served) == 2  # the error, then the access line
    for line in served:
        assert {
            "service",
            "level",
            "event",
            "request_id",
            "trace_id",
            "span_id",
        } <= line.keys()
        assert line["service"] == "test"
        assert line["request_id"] == "shape-1"


def test_a_forked_process_makes_other_request_ids_than_its_parent():
    # Ids come from random's generator, which a fork would copy as it stands
    # unless reseeded in the child.
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write_end, new_request_id().encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    from_child = os.read(read_end, 64).decode()
    os.close(read_end)

    assert len(from_child) == 32
    assert from_child != new_request_id()
