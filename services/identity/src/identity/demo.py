"""The demo's user and clients (``IDENTITY_SEED_DEMO=true``, what ``make run`` sets).

Everything here is for a laptop demo only: the password and the secret are
fixed, published in the README, and printed at start. Nothing is seeded unless
the setting asks for it.
"""

import contextlib
import logging
import sys
from typing import TYPE_CHECKING

from identity.domain.clients import Client
from identity.domain.users import UserProfile
from identity.errors import EmailTaken

if TYPE_CHECKING:
    from identity.accounts import Accounts

logger = logging.getLogger(__name__)

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the demo's published dev-only password
# The same dev-only secret compose/identity/client-secrets.yaml and
# k8s/values-dev.yaml give demo-service, so one set of README commands works.
DEMO_SERVICE_SECRET = "dev-only-demo-service-secret"  # noqa: S105

DEMO_WEB = Client(
    client_id="demo-web",
    client_type="public",
    name="Demo web application",
    redirect_uris=(
        "http://localhost:3000/callback",
        "http://127.0.0.1:8400/callback",
    ),
    post_logout_redirect_uris=("http://localhost:3000/", "http://127.0.0.1:8400/"),
    grant_types=frozenset({"authorization_code", "refresh_token"}),
    scope=frozenset(
        {"openid", "profile", "email", "offline_access", "orders:read", "orders:write"}
    ),
    audience=("orders",),
    skip_consent=False,
    token_endpoint_auth_method="none",  # noqa: S106 - a method name, not a secret
)

DEMO_SERVICE = Client(
    client_id="demo-service",
    client_type="confidential",
    name="Demo back-end service",
    redirect_uris=(),
    post_logout_redirect_uris=(),
    grant_types=frozenset({"client_credentials"}),
    scope=frozenset(
        {"orders:read", "orders:write", "orders:admin", "users:read", "users:write"}
    ),
    audience=("orders",),
    skip_consent=False,
    token_endpoint_auth_method="client_secret_basic",  # noqa: S106
)


async def seed_demo(accounts: "Accounts") -> str:
    """Create (or refresh) the demo user and clients; print and return the block."""
    # A user seeded by an earlier start keeps whatever password it has now.
    with contextlib.suppress(EmailTaken):
        await accounts.create_user(
            UserProfile(
                email=DEMO_EMAIL,
                email_verified=True,
                name="Demo User",
                given_name="Demo",
                family_name="User",
            ),
            DEMO_PASSWORD,
        )
    await accounts.upsert_client(DEMO_WEB, source="demo", secret=None)
    await accounts.upsert_client(
        DEMO_SERVICE, source="demo", secret=DEMO_SERVICE_SECRET
    )
    block = demo_block(accounts.settings.issuer)
    print(block, file=sys.stdout, flush=True)
    logger.info("demo seeded", extra={"clients": ["demo-web", "demo-service"]})
    return block


def demo_block(issuer: str) -> str:
    """What the demo prints at start: who can sign in and which clients exist."""
    return f"""
  identity demo data (IDENTITY_SEED_DEMO=true; DEV ONLY, never in production)

    user          {DEMO_EMAIL}  password {DEMO_PASSWORD}
    demo-web      public client, authorization code + PKCE (S256), refresh tokens
                  redirect_uri http://localhost:3000/callback or http://127.0.0.1:8400/callback
                  scope openid profile email offline_access orders:read orders:write
    demo-service  confidential client, client_credentials
                  secret {DEMO_SERVICE_SECRET}  (dev-only, published)
                  scope orders:read orders:write orders:admin users:read users:write

    token         curl -u demo-service:{DEMO_SERVICE_SECRET} \\
                    -d grant_type=client_credentials -d scope=orders:read \\
                    {issuer}/token
"""
