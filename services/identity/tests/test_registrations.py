"""The clients file and its secrets: start-up registration and its errors."""

import asyncio
import subprocess
import sys

import pytest
import yaml

from identity.accounts import Accounts
from identity.errors import ClientAuthenticationFailed, InvalidClientsFile
from identity.registrations import read_client_secrets_file, read_clients_file

from .conftest import accounts_settings
from .test_accounts import SERVICE

WEB = {
    "client_id": "web",
    "client_type": "public",
    "redirect_uris": ["https://web.example.com/callback"],
    "scope": "openid orders:read",
}
JOBS = {
    "client_id": "jobs",
    "client_type": "confidential",
    "grant_types": ["client_credentials"],
    "scope": "orders:read",
}
JOBS_SECRET = "jobs-secret-" + "j" * 40


def write(path, document):
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def test_a_registration_takes_defaults_by_client_type(tmp_path):
    clients = read_clients_file(write(tmp_path / "c.yaml", {"clients": [WEB, JOBS]}))

    web, jobs = clients
    assert web.grant_types == {"authorization_code", "refresh_token"}
    assert web.token_endpoint_auth_method == "none"
    assert web.scope == {"openid", "orders:read"}
    assert web.audience == ("orders",)
    assert web.name == "web"
    assert jobs.token_endpoint_auth_method == "client_secret_basic"


def test_the_compose_clients_file_is_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    clients = read_clients_file(root / "compose/identity/clients.yaml")
    secrets = read_client_secrets_file(
        root / "compose/identity/client-secrets.yaml", clients
    )

    assert [c.client_id for c in clients] == ["demo-service"]
    assert set(secrets) == {"demo-service"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {
                "clients": [
                    WEB,
                    {
                        **WEB,
                        "client_id": "spa",
                        "redirect_uris": ["http://spa.example.com/cb"],
                    },
                ]
            },
            "clients[1] (client_id 'spa'): redirect_uris[0]: http is allowed only for "
            "localhost or a loopback address, got 'http://spa.example.com/cb'",
        ),
        (
            {"clients": [{**WEB, "redirect_uri": "https://x.example.com"}]},
            "clients[0] (client_id 'web'): redirect_uri: Extra inputs are not permitted",
        ),
        (
            {"clients": [{**JOBS, "client_type": "secret"}]},
            "clients[0] (client_id 'jobs'): client_type: Input should be 'public' or "
            "'confidential', got 'secret'",
        ),
        (
            {"clients": [{"client_type": "public"}]},
            "clients[0]: client_id: Field required",
        ),
        (
            {"clients": [{**WEB, "grant_types": ["client_credentials"]}]},
            "clients[0] (client_id 'web'): grant_types: client_credentials is only "
            "for confidential clients",
        ),
        (
            {"clients": [WEB, WEB]},
            "clients[1] (client_id 'web'): client_id registered twice",
        ),
        ({"clients": {"web": WEB}}, "expected a mapping with a 'clients:' list"),
        ("clients: [\n", "is not valid YAML at line 2"),
    ],
    ids=[
        "redirect-uri",
        "unknown-field",
        "client-type",
        "no-client-id",
        "grant",
        "twice",
        "not-a-list",
        "yaml",
    ],
)
def test_a_bad_clients_file_is_refused_naming_client_and_field(
    tmp_path, document, message
):
    path = write(tmp_path / "clients.yaml", document)

    with pytest.raises(InvalidClientsFile) as raised:
        read_clients_file(path)

    assert message in str(raised.value)


def test_a_secret_for_a_client_that_is_not_confidential_is_refused(tmp_path):
    clients = read_clients_file(write(tmp_path / "c.yaml", {"clients": [WEB, JOBS]}))
    path = write(tmp_path / "s.yaml", {"web": "a-secret-value-that-must-not-show"})

    with pytest.raises(InvalidClientsFile) as raised:
        read_client_secrets_file(path, clients)

    assert (
        str(raised.value) == "'web': not a confidential client of IDENTITY_CLIENTS_FILE"
    )
    assert "a-secret-value" not in str(raised.value)


def test_a_broken_secrets_file_never_quotes_its_content(tmp_path):
    path = write(tmp_path / "s.yaml", "jobs: 'unterminated-secret-value\n")

    with pytest.raises(InvalidClientsFile) as raised:
        read_client_secrets_file(path, [])

    assert "unterminated-secret-value" not in str(raised.value)
    assert "is not valid YAML" in str(raised.value)


def run_identity(env):
    return subprocess.run(
        [sys.executable, "-m", "identity", "migrate"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_clients_file_stops_start_up_with_one_readable_line(tmp_path):
    bad = {"clients": [{**WEB, "redirect_uris": ["https://web.example.com/cb#top"]}]}
    path = write(tmp_path / "clients.yaml", bad)

    finished = run_identity(
        {
            "IDENTITY_CLIENTS_FILE": str(path),
            "IDENTITY_DATABASE_URL": f"sqlite:///{tmp_path / 'identity.db'}",
        }
    )

    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        "identity: invalid configuration: IDENTITY_CLIENTS_FILE: Value error, "
        "clients[0] (client_id 'web'): redirect_uris[0]: a redirect URI has no "
        "fragment, got 'https://web.example.com/cb#top' "
        f"(given {str(path)!r})"
    ]


def test_a_secrets_file_naming_an_unknown_client_stops_start_up(tmp_path):
    clients = write(tmp_path / "clients.yaml", {"clients": [JOBS]})
    secrets = write(tmp_path / "secrets.yaml", {"jbos": JOBS_SECRET})

    finished = run_identity(
        {
            "IDENTITY_CLIENTS_FILE": str(clients),
            "IDENTITY_CLIENT_SECRETS_FILE": str(secrets),
            "IDENTITY_DATABASE_URL": f"sqlite:///{tmp_path / 'identity.db'}",
        }
    )

    assert finished.returncode == 2
    assert finished.stderr.strip() == (
        "identity: invalid configuration: IDENTITY_CLIENT_SECRETS_FILE: Value error, "
        "'jbos': not a confidential client of IDENTITY_CLIENTS_FILE "
        f"(given {str(secrets)!r})"
    )
    assert JOBS_SECRET not in finished.stderr + finished.stdout


@pytest.fixture
def files(tmp_path):
    clients = write(tmp_path / "clients.yaml", {"clients": [WEB, JOBS]})
    secrets = write(tmp_path / "secrets.yaml", {"jobs": JOBS_SECRET})
    return clients, secrets


def file_accounts(sessions, url, files):
    clients, secrets = files
    settings = accounts_settings(url, clients_file=clients, client_secrets_file=secrets)
    return Accounts(sessions, settings)


async def test_registering_the_file_twice_changes_nothing(
    sessions, migrated_url, files
):
    accounts = file_accounts(sessions, migrated_url, files)

    await accounts.start()
    first = await accounts.list_clients(after=None, limit=10)
    await file_accounts(sessions, migrated_url, files).start()
    second = await accounts.list_clients(after=None, limit=10)

    assert first == second
    assert [c.client_id for c in second] == ["jobs", "web"]
    jobs = await accounts.authenticate_client("jobs", JOBS_SECRET, address=None)
    assert jobs.client_id == "jobs"


async def test_a_changed_file_updates_its_clients_and_spares_the_others(
    sessions, migrated_url, files
):
    accounts = file_accounts(sessions, migrated_url, files)
    await accounts.start()
    _, admin_secret = await accounts.register_client(SERVICE)
    clients, secrets = files
    write(clients, {"clients": [{**WEB, "scope": "openid"}, JOBS]})
    write(secrets, {"jobs": "rotated-" + JOBS_SECRET})

    await file_accounts(sessions, migrated_url, files).start()

    assert (await accounts.find_client("web")).scope == {"openid"}
    with pytest.raises(ClientAuthenticationFailed):
        await accounts.authenticate_client("jobs", JOBS_SECRET, address=None)
    await accounts.authenticate_client("jobs", "rotated-" + JOBS_SECRET, address=None)
    # A client registered through the admin API is not the file's to touch.
    await accounts.authenticate_client("reports", admin_secret, address=None)


async def test_two_replicas_starting_together_register_the_file_once(
    sessions, migrated_url, files
):
    clients, secrets = files
    settings = accounts_settings(
        migrated_url, clients_file=clients, client_secrets_file=secrets, seed_demo=True
    )
    first, second = Accounts(sessions, settings), Accounts(sessions, settings)

    await asyncio.gather(first.start(), second.start())

    listed = await first.list_clients(after=None, limit=10)
    assert [c.client_id for c in listed] == ["demo-service", "demo-web", "jobs", "web"]
    assert [u.email for u in await first.list_users(after=None, limit=10)] == [
        "demo@example.com"
    ]
