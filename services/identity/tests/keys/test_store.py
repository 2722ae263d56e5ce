import asyncio
import base64
import json
import secrets

import jwt
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from identity.errors import KeyDecryptionFailed
from identity.keys.encryption import KeyEncryption
from identity.keys.material import thumbprint
from identity.keys.schedule import RotationPolicy
from identity.keys.store import KeyStore, SigningKeyRow
from identity.storage.database import MIGRATIONS
from servicekit.database import create_engine, upgrade_database_async

POLICY = RotationPolicy(
    rotation_period=3600,
    jwks_max_age=60,
    refresh_interval=10,
    longest_token_lifetime=600,
)


@pytest.fixture
async def migrated(database_url):
    await upgrade_database_async(MIGRATIONS, database_url)
    return database_url


def store_for(url, *, kek=b"k" * 32, algorithm="RS256", policy=POLICY):
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return engine, KeyStore(sessions, KeyEncryption(kek), policy, algorithm)


async def test_the_first_key_signs_at_once_and_its_kid_is_its_thumbprint(migrated):
    engine, store = store_for(migrated)
    try:
        await store.maintain()
        key = store.signing_key()
        published = store.jwks()["keys"]
    finally:
        await engine.dispose()

    assert [k["kid"] for k in published] == [key.kid]
    assert thumbprint(published[0]) == key.kid
    assert published[0]["alg"] == "RS256"
    assert published[0]["use"] == "sig"
    # Public members only (RFC 7517 section 9.3: no d, p, q, dp, dq, qi).
    assert set(published[0]) == {"kty", "n", "e", "kid", "alg", "use"}


async def test_es256_is_selectable(migrated):
    engine, store = store_for(migrated, algorithm="ES256")
    try:
        await store.maintain()
        (jwk,) = store.jwks()["keys"]
    finally:
        await engine.dispose()

    assert jwk["alg"] == "ES256"
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


async def test_the_private_part_is_stored_encrypted_under_the_kek(migrated):
    engine, store = store_for(migrated)
    try:
        await store.maintain()
        async with async_sessionmaker(engine)() as db:
            row = (await db.scalars(select(SigningKeyRow))).one()
    finally:
        await engine.dispose()

    assert b"PRIVATE KEY" not in row.private_key_encrypted
    assert "d" not in json.loads(row.public_jwk)
    plaintext = KeyEncryption(b"k" * 32).decrypt(row.private_key_encrypted, kid=row.kid)
    assert plaintext.startswith(b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(KeyDecryptionFailed, match="does not decrypt"):
        KeyEncryption(b"x" * 32).decrypt(row.private_key_encrypted, kid=row.kid)


async def test_two_replicas_starting_together_agree_on_one_key(migrated):
    stores = [store_for(migrated) for _ in range(4)]
    try:
        await asyncio.gather(*(store.maintain() for _, store in stores))
        kids = {store.signing_key().kid for _, store in stores}
        async with async_sessionmaker(stores[0][0])() as db:
            rows = list(await db.scalars(select(SigningKeyRow)))
    finally:
        for engine, _ in stores:
            await engine.dispose()

    assert len(rows) == 1
    assert kids == {rows[0].kid}


async def test_a_rotation_publishes_the_new_key_before_it_signs(migrated):
    engine, store = store_for(migrated)
    try:
        await store.maintain()
        old = store.signing_key()
        new = await store.rotate()
        assert new is not None
        # A second rotation while one is pending changes nothing.
        assert await store.rotate() is None
        now = new.created_at
        published = [k["kid"] for k in store.jwks(now)["keys"]]
        signs_now = store.signing_key(now).kid
        signs_later = store.signing_key(new.activates_at + 1).kid
    finally:
        await engine.dispose()

    assert published == [old.kid, new.kid]
    assert signs_now == old.kid
    assert signs_later == new.kid
    assert new.activates_at - now >= 2 * POLICY.jwks_max_age


async def test_a_retired_key_stays_published_until_its_tokens_have_expired(migrated):
    engine, store = store_for(migrated)
    try:
        await store.maintain()
        old = store.signing_key()
        new = await store.rotate()
        assert new is not None
        retired_until = new.activates_at + POLICY.retention
        still = [k["kid"] for k in store.jwks(retired_until - 1)["keys"]]
        gone = [k["kid"] for k in store.jwks(retired_until + 1)["keys"]]
    finally:
        await engine.dispose()

    assert still == [old.kid, new.kid]
    assert gone == [new.kid]


async def test_a_key_is_created_ahead_when_the_active_one_ages(migrated):
    engine, store = store_for(migrated)
    try:
        await store.maintain()
        first = store.signing_key()
        # Age the first key to just past its rotation point.
        async with async_sessionmaker(engine)() as db, db.begin():
            await db.execute(
                update(SigningKeyRow).values(
                    activates_at=SigningKeyRow.activates_at - POLICY.rotation_period
                )
            )
        await store.maintain()
        kids = [k["kid"] for k in store.jwks()["keys"]]
        signing = store.signing_key().kid
    finally:
        await engine.dispose()

    assert len(kids) == 2
    assert signing == first.kid


async def test_tokens_signed_by_the_store_verify_with_the_published_key(migrated):
    engine, store = store_for(migrated)
    try:
        await store.maintain()
        key = store.signing_key()
        token = jwt.encode({"a": 1}, key.private_key, "RS256", headers={"kid": key.kid})
        (jwk,) = store.jwks()["keys"]
    finally:
        await engine.dispose()

    public = jwt.PyJWK(jwk)
    assert jwt.decode(token, public.key, algorithms=["RS256"]) == {"a": 1}


def test_a_kek_of_the_wrong_length_is_refused():
    short = base64.b64encode(secrets.token_bytes(16)).decode()
    from identity.settings import Settings

    with pytest.raises(ValueError, match="expected 32 bytes once decoded, got 16"):
        Settings(key_encryption_key=short)


async def test_the_key_age_gauge_follows_the_active_key(migrated):
    from prometheus_client import REGISTRY

    engine, store = store_for(migrated)
    try:
        await store.maintain()
        age = REGISTRY.get_sample_value("identity_signing_key_age_seconds")
    finally:
        await engine.dispose()

    assert age is not None
    assert 0 <= age < 60
