async def test_healthz_answers_while_the_process_runs(client, readiness_state):
    readiness_state["ready"] = False

    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_every_dependency_answers(client):
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_is_a_503_problem_naming_the_failed_dependency(
    client, readiness_state
):
    readiness_state["ready"] = False

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"] == {"database": "ConnectionError: database down"}
    assert "database" in body["detail"]
