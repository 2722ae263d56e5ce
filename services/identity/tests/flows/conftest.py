"""identity as a real process (``python -m identity``) on a free loopback port.

The issuer is the process's own URL, so clients reach every endpoint exactly
where the discovery document says. ``IDENTITY_SEED_DEMO`` gives the demo user
(demo@example.com / demo-password); the clients below come from a clients file.
"""

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import ServiceProcess, service_environment
from tests.support.servers import free_port

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
SECRETS = {"rp": "rp-secret-" + "r" * 40, "service": "service-secret-" + "s" * 40}
CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "rp",
        "client_type": "confidential",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://rp.test/cb"],
        "post_logout_redirect_uris": ["https://rp.test/bye"],
        "scope": "openid profile email orders:read",
        "skip_consent": True,
    },
    {
        "client_id": "service",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scope": "orders:read orders:write",
    },
    {
        "client_id": "spa",
        "client_type": "public",
        "redirect_uris": ["https://spa.test/callback"],
        "scope": "openid profile email offline_access orders:read",
    },
]


def start_identity(
    folder: Path, database_url: str | None = None, **settings: str
) -> ServiceProcess:
    port = free_port()
    clients_file = folder / "clients.yaml"
    clients_file.write_text(yaml.safe_dump({"clients": CLIENTS}))
    secrets_file = folder / "client-secrets.yaml"
    secrets_file.write_text(yaml.safe_dump(SECRETS))
    env = {
        "IDENTITY_PORT": str(port),
        "IDENTITY_ISSUER": f"http://127.0.0.1:{port}",
        "IDENTITY_DATABASE_URL": database_url or f"sqlite:///{folder / 'identity.db'}",
        "IDENTITY_KEY_ENCRYPTION_KEY": base64.b64encode(
            secrets.token_bytes(32)
        ).decode(),
        "IDENTITY_CLIENTS_FILE": str(clients_file),
        "IDENTITY_CLIENT_SECRETS_FILE": str(secrets_file),
        "IDENTITY_SEED_DEMO": "true",
        "IDENTITY_PASSWORD_MEMORY_KIB": "1024",
        "IDENTITY_PASSWORD_TIME_COST": "1",
        **{f"IDENTITY_{name.upper()}": value for name, value in settings.items()},
    }
    process = ServiceProcess(
        "identity", port, folder / "identity.log", service_environment(env)
    )
    migrated = process.run("migrate")
    assert migrated.returncode == 0, migrated.stderr + migrated.stdout
    process.start()
    return process


@pytest.fixture
def identity_process(database_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = start_identity(tmp_path, database_url)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def identity_on_sqlite(tmp_path: Path) -> Iterator[ServiceProcess]:
    process = start_identity(tmp_path)
    try:
        yield process
    finally:
        process.stop()
