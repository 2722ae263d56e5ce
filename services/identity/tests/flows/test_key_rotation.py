"""Key rotation with no failed validation: tokens issued before, during and after
rotations all verify against the published JWKS with servicekit's verifier."""

import asyncio
import time

import httpx
import jwt
import pytest

from servicekit.tokens import TokenVerifier

from .conftest import SECRETS, start_identity

pytestmark = pytest.mark.e2e


@pytest.fixture
def rotating_identity(database_url, tmp_path):
    # Rotation every 10 s, JWKS max-age 2 s: new keys are published 5 s ahead.
    process = start_identity(
        tmp_path,
        database_url,
        signing_key_rotation_seconds="10",
        jwks_max_age_seconds="2",
        access_token_lifetime_seconds="30",
    )
    try:
        yield process
    finally:
        process.stop()


async def test_tokens_before_during_and_after_rotations_all_verify(rotating_identity):
    base = rotating_identity.base_url
    verifier = TokenVerifier(
        jwks_url=f"{base}/.well-known/jwks.json",
        issuer=base,
        audience="orders",
        jwks_ttl_seconds=2,  # what the JWKS's Cache-Control allows
        # The cooldown also spaces the TTL refreshes, so it matches the TTL.
        refetch_cooldown_seconds=2,
    )
    await verifier.start()
    issued: list[tuple[str, str]] = []
    failures: list[str] = []
    unknown_on_arrival: list[str] = []
    forced = None
    try:
        async with httpx.AsyncClient(auth=("service", SECRETS["service"])) as http:
            deadline = time.monotonic() + 24
            while time.monotonic() < deadline:
                if forced is None and time.monotonic() > deadline - 12:
                    # A rotation by hand in the middle of the automatic ones,
                    # while tokens keep being issued and verified.
                    forced = asyncio.create_task(
                        asyncio.to_thread(rotating_identity.run, "rotate-keys")
                    )
                response = await http.post(
                    f"{base}/token", data={"grant_type": "client_credentials"}
                )
                token = response.json()["access_token"]
                kid = jwt.get_unverified_header(token)["kid"]
                if kid not in verifier.jwks.kids:
                    unknown_on_arrival.append(kid)
                issued.append((kid, token))
                # A resource server verifies as tokens arrive; its cache
                # refreshes in the background when older than max-age.
                try:
                    await verifier.verify(token)
                except Exception as exc:
                    failures.append(f"on arrival {kid}: {exc}")
                await asyncio.sleep(0.25)
        # Tokens from the start still verify after all rotations.
        for kid, token in issued:
            try:
                await verifier.verify(token)
            except Exception as exc:
                failures.append(f"{kid}: {exc}")
    finally:
        await verifier.close()

    kids = list(dict.fromkeys(kid for kid, _ in issued))
    assert forced is not None
    rotated = await forced
    assert rotated.returncode == 0, rotated.stderr
    assert "published" in rotated.stdout or "pending" in rotated.stdout
    assert len(kids) >= 3, kids
    assert failures == []
    # After the first fetch, every new kid was in the verifier's cached JWKS
    # before the first token signed with it arrived.
    assert unknown_on_arrival == []
