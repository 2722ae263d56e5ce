import time

from identity.client_cache import ClientAuthenticationCache
from identity.domain.clients import Client

CLIENT = Client(
    client_id="service",
    client_type="confidential",
    name="service",
    redirect_uris=(),
    post_logout_redirect_uris=(),
    grant_types=frozenset({"client_credentials"}),
    scope=frozenset({"orders:read"}),
    audience=("orders",),
    skip_consent=False,
    token_endpoint_auth_method="client_secret_basic",
)


def test_only_the_exact_secret_that_succeeded_is_remembered():
    cache = ClientAuthenticationCache(ttl_seconds=60)
    cache.put("service", "right", CLIENT)

    assert cache.get("service", "right") is CLIENT
    assert cache.get("service", "wrong") is None
    assert cache.get("other", "right") is None


def test_entries_expire_and_a_failure_forgets_the_client(monkeypatch):
    cache = ClientAuthenticationCache(ttl_seconds=2)
    cache.put("service", "right", CLIENT)
    cache.forget("service")
    assert cache.get("service", "right") is None

    cache.put("service", "right", CLIENT)
    later = time.monotonic() + 3
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert cache.get("service", "right") is None


def test_a_zero_lifetime_disables_the_cache():
    cache = ClientAuthenticationCache(ttl_seconds=0)
    cache.put("service", "right", CLIENT)

    assert cache.get("service", "right") is None
