"""A live cluster (kind, minikube, any) reached through the current kube
context, with the platform installed in $NAMESPACE (default "platform") as
release "platform" by `make deploy` or `skaffold run`.

Without a reachable cluster these tests skip, in CI too. This is the one
deliberate exception to "CI may not skip for what it lacks": a CI machine here
can have no cluster at all (no registry serves kind's node image, no nested
Kubernetes), so the absence is the expected state and not a missing install
step. The tests are run by people with a cluster: `make test-cluster`.
"""

import http.client
import json
import os
from dataclasses import dataclass
from typing import Any

import pytest

RELEASE = "platform"
SERVICES = ("identity", "orders", "gateway")


def cluster_unreachable(reason: str) -> None:
    """Skip, even under CI=true: see the module docstring for why."""
    pytest.skip(f"no Kubernetes cluster: {reason}")


@dataclass
class Cluster:
    """The Kubernetes API of the current context and the platform's namespace."""

    core: Any
    apps: Any
    namespace: str

    def component_name(self, component: str) -> str:
        """The object name of a component, as the umbrella names it."""
        deployments = self.apps.list_namespaced_deployment(
            self.namespace,
            label_selector=(
                f"app.kubernetes.io/name={component},"
                f"app.kubernetes.io/instance={RELEASE}"
            ),
        ).items
        if len(deployments) != 1:
            pytest.fail(f"expected one {component} Deployment in {self.namespace}")
        return str(deployments[0].metadata.name)

    def ready_pod(self, component: str) -> str:
        pods = self.core.list_namespaced_pod(
            self.namespace,
            label_selector=(
                f"app.kubernetes.io/name={component},"
                f"app.kubernetes.io/instance={RELEASE},"
                "app.kubernetes.io/component=server"
            ),
        ).items
        for pod in pods:
            conditions = pod.status.conditions or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                return str(pod.metadata.name)
        pytest.fail(f"no ready {component} pod in {self.namespace}")
        raise AssertionError("unreachable")

    def request(
        self,
        component: str,
        port: int,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request to a ready pod, through the API server's port-forward."""
        from kubernetes.stream import portforward

        forward = portforward(
            self.core.connect_get_namespaced_pod_portforward,
            self.ready_pod(component),
            self.namespace,
            ports=str(port),
        )
        try:
            connection = http.client.HTTPConnection("localhost", port, timeout=15)
            connection.sock = forward.socket(port)
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            forward.close()

    def get_json(self, component: str, port: int, path: str) -> tuple[int, Any]:
        status, _, body = self.request(component, port, "GET", path)
        return status, json.loads(body) if body else None


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    try:
        from kubernetes import client, config
    except ImportError:
        cluster_unreachable("the kubernetes package is not installed")
        raise

    try:
        config.load_kube_config()
    except Exception as exc:  # no file, no context, a broken kubeconfig
        cluster_unreachable(f"no usable kubeconfig ({exc})")
    try:
        client.VersionApi().get_code(_request_timeout=5)
    except (TimeoutError, OSError, Exception) as exc:
        cluster_unreachable(f"the API server does not answer ({type(exc).__name__})")

    namespace = os.environ.get("NAMESPACE", "platform")
    core = client.CoreV1Api()
    try:
        core.read_namespace(namespace, _request_timeout=5)
    except Exception:
        # A cluster without the platform (any context a developer has open)
        # is not this suite's to judge: `make deploy` first.
        cluster_unreachable(f"the current context has no namespace {namespace!r}")
    return Cluster(core, client.AppsV1Api(), namespace)
