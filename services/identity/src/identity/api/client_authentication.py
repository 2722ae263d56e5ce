"""Client authentication at the token, revocation and introspection endpoints.

A confidential client's successful authentication is remembered in memory for
``IDENTITY_CLIENT_AUTHENTICATION_CACHE_SECONDS`` (2 s by default), keyed by
the client_id and a SHA-256 of the secret it presented. A service asking for
tokens in a burst then costs no database round trip (the client lookup and the
throttling counters) after its first request, which is what lets one worker
issue tokens near the raw signing rate. What it costs: a secret rotated or a
client disabled through the admin API keeps working on each replica for at
most that long. Only the exact secret that just succeeded hits the cache, so
it gives an attacker guessing secrets nothing; every failure still goes to
the database and its throttling, and clears the client's entries.
"""

from fastapi import Request

from identity.api.parameters import Parameters, client_credentials
from identity.domain.clients import Client
from identity.errors import (
    ClientAuthenticationFailed,
    ClientThrottled,
    InvalidClientAuthentication,
    TemporarilyUnavailable,
)
from identity.provider import Provider


async def authenticate_client(
    provider: Provider, request: Request, params: Parameters
) -> Client:
    """The client making the request; confidential clients must prove it."""
    credentials = client_credentials(request, params)
    if credentials.secret is None:
        client = await provider.accounts.find_client(credentials.client_id)
        if client is None or client.is_confidential:
            raise InvalidClientAuthentication("client authentication failed")
        return client

    cache = provider.client_cache
    cached = cache.get(credentials.client_id, credentials.secret)
    if cached is not None:
        return cached
    address = request.client.host if request.client else None
    try:
        client = await provider.accounts.authenticate_client(
            credentials.client_id, credentials.secret, address=address
        )
    except ClientThrottled as exc:
        cache.forget(credentials.client_id)
        raise TemporarilyUnavailable(
            str(exc), retry_after=exc.retry_after_seconds
        ) from exc
    except ClientAuthenticationFailed as exc:
        cache.forget(credentials.client_id)
        raise InvalidClientAuthentication("client authentication failed") from exc
    cache.put(credentials.client_id, credentials.secret, client)
    return client
