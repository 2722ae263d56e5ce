"""The platform on a live cluster: rollouts, the gateway through a port-forward,
the token and order flow, and `helm test`."""

import json
import time
import urllib.parse

import helm_python
import pytest

from tests.cluster.conftest import RELEASE, SERVICES, Cluster

pytestmark = pytest.mark.cluster

ROLLOUT_TIMEOUT_SECONDS = 180


def _rolled_out(cluster: Cluster, name: str) -> bool:
    deployment = cluster.apps.read_namespaced_deployment(name, cluster.namespace)
    status = deployment.status
    wanted = deployment.spec.replicas or 0
    return bool(
        (status.observed_generation or 0) >= deployment.metadata.generation
        and (status.updated_replicas or 0) == wanted
        and (status.available_replicas or 0) == wanted
    )


def test_every_deployment_rolls_out(cluster):
    names = [cluster.component_name(c) for c in SERVICES]
    deadline = time.monotonic() + ROLLOUT_TIMEOUT_SECONDS

    pending = list(names)
    while pending and time.monotonic() < deadline:
        pending = [n for n in pending if not _rolled_out(cluster, n)]
        if pending:
            time.sleep(2)

    assert pending == [], f"not rolled out in {ROLLOUT_TIMEOUT_SECONDS} s"


def test_the_gateway_answers_through_a_port_forward(cluster):
    assert cluster.get_json("gateway", 8080, "/healthz") == (200, {"status": "ok"})
    assert cluster.get_json("gateway", 8080, "/readyz")[0] == 200
    # identity is reached through its cluster DNS name, and its database.
    assert cluster.get_json("gateway", 8080, "/auth/readyz") == (
        200,
        {"status": "ready"},
    )


def test_live_pods_run_as_the_charts_say(cluster):
    for component in SERVICES:
        pod = cluster.core.read_namespaced_pod(
            cluster.ready_pod(component), cluster.namespace
        )
        (container,) = pod.spec.containers

        assert pod.spec.security_context.run_as_non_root is True
        assert pod.spec.automount_service_account_token is False
        assert container.security_context.read_only_root_filesystem is True
        assert container.security_context.allow_privilege_escalation is False


def test_a_client_credentials_token_and_an_order(cluster):
    status, discovery = cluster.get_json(
        "gateway", 8080, "/auth/.well-known/openid-configuration"
    )
    if status != 200:
        # Lands with identity's token endpoint; until then there is no flow.
        pytest.skip(
            "identity serves no discovery document yet (token endpoint pending)"
        )
    assert discovery["token_endpoint"].endswith("/auth/token")

    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": "demo-service",
            "client_secret": "dev-only-demo-service-secret",
            "scope": "orders:read orders:write",
        }
    ).encode()
    status, _, body = cluster.request(
        "gateway",
        8080,
        "POST",
        "/auth/token",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, body
    token = json.loads(body)["access_token"]
    status, _, body = cluster.request(
        "gateway", 8080, "GET", "/orders", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200, body


def test_helm_test_passes(cluster):
    with helm_python.Config(namespace=cluster.namespace) as config:
        result = config.test(RELEASE, timeout=120, logs=True)

    logs = result.get("logs", "")
    for url_part in ("/readyz", "/auth/readyz"):
        assert url_part in logs
