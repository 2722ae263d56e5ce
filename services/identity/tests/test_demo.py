"""Demo seeding, through identity running as `make run` starts it."""

import base64
import secrets

import httpx
import pytest

from identity.demo import DEMO_EMAIL, DEMO_SERVICE_SECRET
from tests.support.processes import ServiceProcess, service_environment
from tests.support.servers import free_port


@pytest.fixture
def identity_process(tmp_path):
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        port = free_port()
        process = ServiceProcess(
            "identity",
            port,
            tmp_path / "identity.log",
            service_environment(
                {
                    "IDENTITY_PORT": str(port),
                    "IDENTITY_ISSUER": f"http://127.0.0.1:{port}",
                    "IDENTITY_DATABASE_URL": f"sqlite:///{tmp_path / 'identity.db'}",
                    "IDENTITY_KEY_ENCRYPTION_KEY": base64.b64encode(
                        secrets.token_bytes(32)
                    ).decode(),
                    **env,
                }
            ),
        )
        assert process.run("migrate").returncode == 0
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def demo_service_token(identity: ServiceProcess, scope: str) -> httpx.Response:
    return httpx.post(
        f"{identity.base_url}/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "resource": "identity",
        },
        auth=("demo-service", DEMO_SERVICE_SECRET),
        timeout=10,
    )


def demo_users(identity: ServiceProcess) -> list[str]:
    token = demo_service_token(identity, "users:read").json()["access_token"]
    listed = httpx.get(
        f"{identity.base_url}/admin/users",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    return [user["email"] for user in listed.json()["items"]]


def test_the_demo_is_seeded_once_printed_at_each_start_and_works(identity_process):
    identity = identity_process(IDENTITY_SEED_DEMO="true")

    assert demo_users(identity) == [DEMO_EMAIL]
    identity.stop()
    identity.start()
    assert demo_users(identity) == [DEMO_EMAIL]

    printed = identity.log_path.read_text()
    assert printed.count("identity demo data (IDENTITY_SEED_DEMO=true; DEV ONLY") == 2
    assert f"user          {DEMO_EMAIL}  password demo-password" in printed
    assert f"secret {DEMO_SERVICE_SECRET}  (dev-only, published)" in printed


def test_nothing_is_seeded_unless_asked(identity_process):
    identity = identity_process()

    refused = demo_service_token(identity, "users:read")

    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert "demo" not in identity.log_path.read_text().lower()


def test_debug_logs_hold_no_password_nor_hash(identity_process):
    identity = identity_process(IDENTITY_SEED_DEMO="true", IDENTITY_LOG_LEVEL="DEBUG")
    token = demo_service_token(identity, "users:write").json()["access_token"]
    password = "a passphrase nobody should read"

    created = httpx.post(
        f"{identity.base_url}/admin/users",
        json={"email": "grace@example.com", "password": password},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert created.status_code == 201

    logged = "\n".join(
        line
        for line in identity.log_path.read_text().splitlines()
        if line.startswith("{")
    )
    assert password not in logged
    assert "$argon2id$" not in logged
    assert token not in logged
