"""How the charts wire the services together: the JWKS URL, the issuer, the
gateway's routes, Ingress and HTTPRoute, ServiceMonitor, migration hooks and
the helm test pods."""

from urllib.parse import urlsplit

import helm_python
import pytest
import yaml

from tests.support.charts import (
    Manifest,
    container_env,
    find,
    of_kind,
    render,
    render_platform,
)

PREFIXED = {"global": {"componentNames": {"identity": "", "orders": "", "gateway": ""}}}


def _config(manifests: list[Manifest], component: str) -> dict[str, str]:
    configs = [
        m
        for m in of_kind(manifests, "ConfigMap")
        if m.labels["app.kubernetes.io/name"] == component
        and "routes" not in m.name
        and "clients" not in m.name
    ]
    assert len(configs) == 1
    return dict(configs[0].body["data"])


def _identity_service(manifests: list[Manifest]) -> Manifest:
    (service,) = [
        m
        for m in of_kind(manifests, "Service")
        if m.labels["app.kubernetes.io/name"] == "identity"
    ]
    return service


@pytest.mark.parametrize(
    ("release", "namespace", "values"),
    [
        ("platform", "platform", {}),
        ("blue", "team-a", {}),
        ("blue", "team-a", PREFIXED),
    ],
    ids=["plain-names", "other-release-and-namespace", "release-prefixed-names"],
)
def test_the_jwks_url_names_the_identity_service_of_the_same_release_and_namespace(
    release, namespace, values
):
    manifests = render_platform(values, release=release, namespace=namespace)
    identity = _identity_service(manifests)
    port = next(
        p["port"] for p in identity.body["spec"]["ports"] if p["name"] == "http"
    )
    expected = (
        f"http://{identity.name}.{namespace}.svc.cluster.local:{port}"
        "/.well-known/jwks.json"
    )

    assert identity.labels["app.kubernetes.io/instance"] == release
    assert identity.body["metadata"]["namespace"] == namespace
    assert _config(manifests, "orders")["ORDERS_JWKS_URL"] == expected
    assert _config(manifests, "gateway")["GATEWAY_JWKS_URL"] == expected


def test_the_gateway_routes_reach_identity_and_orders_by_their_service_names():
    manifests = render_platform(PREFIXED, release="blue", namespace="team-a")
    routes_map = find(manifests, "ConfigMap", "blue-gateway-routes")
    routes = yaml.safe_load(routes_map.body["data"]["routes.yaml"])
    services = {
        m.labels["app.kubernetes.io/name"]: m for m in of_kind(manifests, "Service")
    }

    for upstream in ("identity", "orders"):
        url = urlsplit(routes["upstreams"][upstream]["url"])
        service = services[upstream]
        assert url.hostname == f"{service.name}.team-a.svc.cluster.local"
        assert url.port == service.body["spec"]["ports"][0]["port"]
    assert routes["routes"] == [
        {
            "prefix": "/auth",
            "upstream": "identity",
            "strip_prefix": True,
            "rate_limit": "auth",
        },
        {
            "prefix": "/orders",
            "upstream": "orders",
            "auth": {"required": True, "audience": "orders"},
            "rate_limit": "default",
        },
    ]


def test_the_routes_file_is_mounted_where_the_gateway_reads_it():
    manifests = render_platform()
    spec = find(manifests, "Deployment", "gateway").body["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}

    assert (
        _config(manifests, "gateway")["GATEWAY_ROUTES_FILE"]
        == "/etc/gateway/routes.yaml"
    )
    assert mounts["routes"] == "/etc/gateway"
    assert volumes["routes"]["configMap"]["name"] == "gateway-routes"


def test_the_issuer_is_the_public_url_from_values_in_every_service():
    manifests = render_platform(
        {"global": {"issuer": "https://platform.example.com/auth/"}}
    )

    assert (
        _config(manifests, "identity")["IDENTITY_ISSUER"]
        == "https://platform.example.com/auth"
    )
    assert (
        _config(manifests, "orders")["ORDERS_ISSUER"]
        == "https://platform.example.com/auth"
    )
    assert (
        _config(manifests, "gateway")["GATEWAY_ISSUER"]
        == "https://platform.example.com/auth"
    )


def test_a_chart_issuer_overrides_the_global_one():
    manifests = render(
        "orders",
        {
            "issuer": "https://orders.example.com/auth",
            "global": {"issuer": "https://x.example.com/auth"},
        },
    )

    assert (
        _config(manifests, "orders")["ORDERS_ISSUER"]
        == "https://orders.example.com/auth"
    )


def test_the_ingress_is_on_by_default_and_routes_everything_to_the_gateway():
    ingress = find(render_platform(), "Ingress").body

    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert "ingressClassName" not in ingress["spec"]  # the cluster's default class
    assert "tls" not in ingress["spec"]
    (rule,) = ingress["spec"]["rules"]
    assert "host" not in rule
    assert rule["http"]["paths"] == [
        {
            "path": "/",
            "pathType": "Prefix",
            "backend": {"service": {"name": "gateway", "port": {"name": "http"}}},
        }
    ]


def test_the_ingress_class_host_and_tls_are_configurable():
    values = {
        "ingress": {
            "className": "cloud-provider-kind",
            "host": "platform.example.com",
            "tls": {"enabled": True, "secretName": "platform-tls"},
        }
    }
    ingress = find(render("gateway", values), "Ingress").body

    assert ingress["spec"]["ingressClassName"] == "cloud-provider-kind"
    assert ingress["spec"]["rules"][0]["host"] == "platform.example.com"
    assert ingress["spec"]["tls"] == [
        {"secretName": "platform-tls", "hosts": ["platform.example.com"]}
    ]


def test_an_httproute_can_replace_the_ingress():
    values = {
        "ingress": {"enabled": False},
        "httpRoute": {
            "enabled": True,
            "parentRefs": [{"name": "eg", "namespace": "gateways"}],
            "hostnames": ["platform.example.com"],
        },
    }
    manifests = render("gateway", values)
    route = find(manifests, "HTTPRoute").body

    assert of_kind(manifests, "Ingress") == []
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"name": "eg", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["platform.example.com"]
    assert route["spec"]["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"name": "platform-gateway", "port": 8080}],
        }
    ]


@pytest.mark.parametrize(
    ("mode", "expected"), [("auto", 0), ("always", 3), ("never", 0)]
)
def test_service_monitors_follow_the_mode(mode, expected):
    # Rendering offline, the cluster has no Prometheus Operator CRD: "auto"
    # renders none, as `helm install` does on a cluster without it.
    values = {
        name: {"metrics": {"serviceMonitor": {"mode": mode}}}
        for name in ("identity", "orders", "gateway")
    }
    monitors = of_kind(render_platform(values), "ServiceMonitor")

    assert len(monitors) == expected
    for monitor in monitors:
        spec = monitor.body["spec"]
        assert monitor.body["apiVersion"] == "monitoring.coreos.com/v1"
        assert spec["endpoints"] == [
            {
                "port": "metrics",
                "path": "/metrics",
                "interval": "30s",
                "scrapeTimeout": "10s",
            }
        ]
        assert spec["namespaceSelector"] == {"matchNames": ["platform"]}


def test_service_monitors_check_the_capability_before_rendering():
    from tests.support.charts import CHARTS

    template = (CHARTS / "lib/templates/_companions.tpl").read_text()

    assert (
        '.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor"'
        in template
    )


@pytest.mark.parametrize("name", ["identity", "orders"])
def test_migrations_run_as_a_hook_before_the_new_pods(name):
    manifests = render_platform()
    job = find(manifests, "Job", f"{name}-migrations")
    secret = find(manifests, "Secret", f"{name}-migrations")
    (container,) = job.body["spec"]["template"]["spec"]["containers"]
    env = container_env(container)

    assert job.annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert secret.annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    # The Secret the Job reads exists before it: a lower hook weight.
    assert int(secret.annotations["helm.sh/hook-weight"]) < int(
        job.annotations["helm.sh/hook-weight"]
    )
    assert "hook-succeeded" in secret.annotations["helm.sh/hook-delete-policy"]
    assert container["args"] == ["migrate"]
    assert env[f"{name.upper()}_DATABASE_URL"] == {
        "secretKeyRef": {"name": f"{name}-migrations", "key": "database-url"}
    }
    # Nothing of the release exists yet at pre-install: no ConfigMap, no account.
    assert "envFrom" not in container
    assert "serviceAccountName" not in job.body["spec"]["template"]["spec"]
    assert not [n for n in env if n.endswith("_FILE")]


def test_migrations_read_an_existing_secret_directly():
    manifests = render("identity", {"existingSecret": "vault-identity"})
    (container,) = find(manifests, "Job").body["spec"]["template"]["spec"]["containers"]

    assert container_env(container)["IDENTITY_DATABASE_URL"] == {
        "secretKeyRef": {"name": "vault-identity", "key": "database-url"}
    }
    assert [m.name for m in of_kind(manifests, "Secret")] == []


@pytest.mark.parametrize(
    ("name", "urls"),
    [
        ("identity", ["http://identity:8000/healthz", "http://identity:8000/readyz"]),
        ("orders", ["http://orders:8001/healthz", "http://orders:8001/readyz"]),
        (
            "gateway",
            [
                "http://gateway:8080/healthz",
                "http://gateway:8080/readyz",
                "http://gateway:8080/auth/readyz",
            ],
        ),
    ],
)
def test_helm_test_pods_ask_their_own_service(name, urls):
    pod = find(render_platform(), "Pod", f"{name}-test")
    (container,) = pod.body["spec"]["containers"]

    assert pod.annotations["helm.sh/hook"] == "test"
    assert container["image"] == f"platform/{name}:0.1.0"
    assert container["args"][1:] == urls


def test_identity_reads_clients_from_a_config_map_and_their_secrets_from_a_secret():
    manifests = render_platform()
    clients = yaml.safe_load(
        find(manifests, "ConfigMap", "identity-clients").body["data"]["clients.yaml"]
    )
    secret = find(manifests, "Secret", "identity").body["stringData"]
    spec = find(manifests, "Deployment", "identity").body["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    config = _config(manifests, "identity")

    assert clients["clients"][0]["client_id"] == "demo-service"
    assert "dev-only-demo-service-secret" not in str(clients)
    assert yaml.safe_load(secret["client-secrets.yaml"]) == {
        "demo-service": "dev-only-demo-service-secret"
    }
    assert config["IDENTITY_CLIENTS_FILE"] == "/etc/identity/clients/clients.yaml"
    assert (
        config["IDENTITY_CLIENT_SECRETS_FILE"]
        == "/etc/identity/secrets/client-secrets.yaml"
    )
    assert volumes["client-secrets"]["secret"]["secretName"] == "identity"
    assert volumes["clients"]["configMap"]["name"] == "identity-clients"


def test_the_rendered_routes_file_is_one_the_gateway_accepts():
    from gateway.routing import RouteTable

    manifests = render_platform(
        {
            "gateway": {
                "upstreamPolicies": {
                    "orders": {
                        "idle_timeout_seconds": 3,
                        "circuit_breaker": {"window": 10, "minimum_calls": 5},
                    }
                },
                "routes": [
                    {"prefix": "/auth", "upstream": "identity", "strip_prefix": True},
                    {
                        "prefix": "/orders",
                        "upstream": "orders",
                        "auth": {
                            "required": True,
                            "audience": "orders",
                            "scopes": ["orders:read"],
                        },
                        "rate_limit": "default",
                        "timeouts": {"connect": 1, "read": 10, "total": 20},
                        "retry": {"attempts": 3, "budget_ratio": 0.1},
                        "max_body_bytes": 1048576,
                    },
                ],
            }
        }
    )
    document = yaml.safe_load(
        find(manifests, "ConfigMap", "gateway-routes").body["data"]["routes.yaml"]
    )

    table = RouteTable.model_validate(document)

    assert table.upstreams["orders"].circuit_breaker.window == 10
    assert str(table.upstreams["orders"].url).startswith("http://orders.platform")
    assert table.routes[1].retry.attempts == 3
    assert set(table.rate_limits) == {"default", "auth"}


@pytest.mark.parametrize(
    ("source", "volume"),
    [
        ({"secretName": "cluster-ca"}, {"secret": {"secretName": "cluster-ca"}}),
        ({"configMapName": "trust-bundle"}, {"configMap": {"name": "trust-bundle"}}),
    ],
    ids=["secret", "config-map"],
)
def test_the_gateway_mounts_the_tls_files_its_https_upstreams_name(source, volume):
    from gateway.routing import RouteTable

    manifests = render_platform(
        {
            "gateway": {
                "upstreamTLS": source,
                "extraUpstreams": {"billing": "https://billing.finance:8443"},
                "upstreamPolicies": {
                    "billing": {
                        "ca_file": "/etc/gateway-tls/ca.crt",
                        "client_certificate_file": "/etc/gateway-tls/tls.crt",
                        "client_key_file": "/etc/gateway-tls/tls.key",
                    }
                },
            }
        }
    )
    document = yaml.safe_load(
        find(manifests, "ConfigMap", "gateway-routes").body["data"]["routes.yaml"]
    )
    spec = find(manifests, "Deployment", "gateway").body["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}

    assert document["upstreams"]["billing"] == {
        "url": "https://billing.finance:8443",
        "ca_file": "/etc/gateway-tls/ca.crt",
        "client_certificate_file": "/etc/gateway-tls/tls.crt",
        "client_key_file": "/etc/gateway-tls/tls.key",
    }
    assert volumes["upstream-tls"] == {"name": "upstream-tls", **volume}
    assert mounts["upstream-tls"] == {
        "name": "upstream-tls",
        "mountPath": "/etc/gateway-tls",
        "readOnly": True,
    }
    # The gateway accepts the routes file but for the files, which only the pod has.
    billing = document["upstreams"]["billing"]
    with pytest.raises(ValueError, match="ca_file"):
        RouteTable.model_validate(document)
    for field in ("ca_file", "client_certificate_file", "client_key_file"):
        del billing[field]
    assert RouteTable.model_validate(document).upstreams["billing"].url.port == 8443


def test_the_gateway_mounts_no_tls_files_unless_asked():
    spec = find(render_platform(), "Deployment", "gateway").body["spec"]["template"][
        "spec"
    ]

    assert "upstream-tls" not in {v["name"] for v in spec["volumes"]}


def test_tls_files_from_both_a_secret_and_a_config_map_stop_the_install():
    with pytest.raises(helm_python.HelmError, match="secretName or configMapName"):
        render_platform(
            {"gateway": {"upstreamTLS": {"secretName": "a", "configMapName": "b"}}}
        )
