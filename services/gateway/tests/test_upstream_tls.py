"""An https:// upstream whose certificate a private CA signed, as in a cluster.

The upstream is ``upstream_server.py`` serving TLS with a certificate made for
the test (fixtures ``tls_upstream`` and ``mtls_upstream``, which also asks
for the client's certificate); the gateway trusts it only through the
upstream's ``ca_file``.
"""

import os
import shutil

import httpx
import pytest
import yaml

from gateway.routing import load_route_table
from servicekit.config import ConfigurationError
from tests.support.certificates import (
    certificate_authority,
    client_certificate,
    server_certificate,
)

ROUTES = [{"prefix": "/tls", "upstream": "secure", "strip_prefix": True}]


def test_the_upstreams_ca_file_lets_the_gateway_verify_it(
    start_gateway, tls_upstream, authority
):
    url = f"https://localhost:{tls_upstream.port}"
    gateway = start_gateway(
        ROUTES, {"secure": {"url": url, "ca_file": str(authority.pem)}}
    )

    answers = [httpx.get(f"{gateway.base_url}/tls/echo/{n}") for n in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[0].json()["path"] == "/echo/0"
    # Host is the upstream's authority, which its certificate names.
    headers = dict(answers[0].json()["headers"])
    assert headers["Host"] == f"localhost:{tls_upstream.port}"
    # One TLS connection, kept alive and reused.
    assert len({tuple(answer.json()["peer"]) for answer in answers}) == 1


@pytest.mark.parametrize("trust", ["system", "another CA"])
def test_a_certificate_the_gateway_cannot_verify_is_a_502(
    start_gateway,
    tls_upstream,
    tmp_path,
    trust,
):
    upstream: dict[str, str] = {"url": f"https://localhost:{tls_upstream.port}"}
    if trust == "another CA":
        upstream["ca_file"] = str(certificate_authority(tmp_path, "other-ca").pem)
    gateway = start_gateway(ROUTES, {"secure": upstream})

    answer = httpx.get(f"{gateway.base_url}/tls/echo/x")

    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "The upstream 'secure' could not be reached."
    assert "CERTIFICATE_VERIFY_FAILED" in gateway.log_path.read_text()


def test_a_certificate_for_another_name_is_a_502(
    start_gateway, tls_upstream, authority
):
    # The same server by its address, which its certificate does not name.
    url = f"https://127.0.0.1:{tls_upstream.port}"
    gateway = start_gateway(
        ROUTES, {"secure": {"url": url, "ca_file": str(authority.pem)}}
    )

    answer = httpx.get(f"{gateway.base_url}/tls/echo/x")

    assert answer.status_code == 502
    assert "CERTIFICATE_VERIFY_FAILED" in gateway.log_path.read_text()


def test_the_gateway_presents_its_certificate_to_an_upstream_that_asks(
    start_gateway, mtls_upstream, authority, tmp_path
):
    chain, key = client_certificate(tmp_path, authority, "gateway")
    upstream = {
        "url": f"https://localhost:{mtls_upstream.port}",
        "ca_file": str(authority.pem),
        "client_certificate_file": str(chain),
        "client_key_file": str(key),
    }
    gateway = start_gateway(ROUTES, {"secure": upstream})

    answer = httpx.get(f"{gateway.base_url}/tls/echo/x")

    assert answer.status_code == 200
    assert answer.json()["client_certificate"] == "gateway"


def test_without_a_client_certificate_an_upstream_that_asks_is_a_502(
    start_gateway, mtls_upstream, authority
):
    url = f"https://localhost:{mtls_upstream.port}"
    gateway = start_gateway(
        ROUTES, {"secure": {"url": url, "ca_file": str(authority.pem)}}
    )

    answer = httpx.get(f"{gateway.base_url}/tls/echo/x")

    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/problem+json"
    # TLS 1.3 ends the handshake before the upstream checks the certificate,
    # and Python's ssl reads its alert as a close.
    assert "before the answer was complete" in gateway.log_path.read_text()


def _routes_file(tmp_path, upstream: dict[str, str]):
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump({"upstreams": {"a": upstream}, "routes": []}))
    return routes


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"url": "http://orders", "ca_file": "CA"},
            "upstreams.a.ca_file: Value error, applies only to an https:// upstream",
        ),
        (
            {"url": "https://orders", "ca_file": "NOT_PEM"},
            "upstreams.a: Value error, ca_file: ",
        ),
        (
            {"url": "https://orders", "ca_file": "MISSING"},
            "upstreams.a.ca_file: Path does not point to a file",
        ),
        (
            {"url": "https://orders", "client_certificate_file": "CLIENT_CERT"},
            "upstreams.a: Value error, client_certificate_file and client_key_file "
            "go together",
        ),
        (
            {
                "url": "https://orders",
                "client_certificate_file": "CLIENT_CERT",
                "client_key_file": "OTHER_KEY",
            },
            "upstreams.a: Value error, client_certificate_file, client_key_file: "
            "not a certificate in PEM and its private key",
        ),
        (
            {
                "url": "http://orders",
                "client_certificate_file": "CLIENT_CERT",
                "client_key_file": "CLIENT_KEY",
            },
            "upstreams.a.client_certificate_file: Value error, applies only to an "
            "https:// upstream",
        ),
    ],
    ids=[
        "ca-plain-http",
        "ca-not-pem",
        "ca-missing",
        "cert-alone",
        "wrong-key",
        "mtls-plain-http",
    ],
)
def test_unusable_tls_settings_stop_start_up(tmp_path, authority, setting, message):
    chain, key = client_certificate(tmp_path, authority, "gateway")
    _, other_key = client_certificate(tmp_path, authority, "someone-else")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    files = {
        "CA": authority.pem,
        "NOT_PEM": not_pem,
        "MISSING": tmp_path / "absent.pem",
        "CLIENT_CERT": chain,
        "CLIENT_KEY": key,
        "OTHER_KEY": other_key,
    }
    upstream = {
        field: value if field == "url" else str(files[value])
        for field, value in setting.items()
    }

    with pytest.raises(ConfigurationError) as raised:
        load_route_table(_routes_file(tmp_path, upstream))

    assert message in str(raised.value)


def test_renewed_tls_files_are_used_without_a_restart(
    start_gateway, tls_upstream, authority, tmp_path
):
    # As the kubelet updates a mounted Secret: the path stays, the file behind
    # it is swapped whole.
    mounted = tmp_path / "mounted-ca.crt"
    shutil.copy(authority.pem, mounted)
    url = f"https://localhost:{tls_upstream.port}"
    gateway = start_gateway(ROUTES, {"secure": {"url": url, "ca_file": str(mounted)}})
    assert httpx.get(f"{gateway.base_url}/tls/echo/x").status_code == 200

    # The upstream comes back with a certificate from a new CA.
    renewed = certificate_authority(tmp_path, "renewed-ca")
    tls_upstream.stop()
    folder = tmp_path / "renewed"
    folder.mkdir()
    tls_upstream.tls = server_certificate(folder, renewed)
    tls_upstream.start()
    assert httpx.get(f"{gateway.base_url}/tls/echo/x").status_code == 502

    _swap(mounted, renewed.pem.read_bytes())
    assert httpx.get(f"{gateway.base_url}/tls/echo/x").status_code == 200
    assert "upstream TLS files reloaded" in gateway.log_path.read_text()

    # A file caught half-written leaves the last good one in use.
    _swap(mounted, b"-----BEGIN CERTIFICATE-----\n")
    tls_upstream.stop()
    tls_upstream.start()
    assert httpx.get(f"{gateway.base_url}/tls/echo/x").status_code == 200
    assert "the previous ones stay in use" in gateway.log_path.read_text()


def _swap(path, content: bytes) -> None:
    staged = path.with_suffix(".new")
    staged.write_bytes(content)
    os.replace(staged, path)
