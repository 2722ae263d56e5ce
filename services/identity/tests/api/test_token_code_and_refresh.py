"""authorization_code and refresh_token grants, ID tokens, userinfo, revocation."""

import asyncio
import base64
import hashlib
import time

import jwt
import pytest

from .conftest import ISSUER, SECRETS, basic, pkce_pair, redirect_params


def id_token_claims(identity, token, audience="web"):
    header = jwt.get_unverified_header(token)
    jwks = identity.provider.keys.jwks()["keys"]
    (jwk,) = [k for k in jwks if k["kid"] == header["kid"]]
    return header, jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=audience,
        issuer=ISSUER,
    )


async def test_the_code_flow_gives_access_refresh_and_id_tokens(identity):
    tokens = await identity.code_flow(
        nonce="n-0S6_WzA2Mj", scope="openid profile orders:read"
    )

    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "openid orders:read profile"
    assert tokens["refresh_token"]
    header, claims = id_token_claims(identity, tokens["id_token"])
    assert header["typ"] == "JWT"
    assert header["kid"] in {k["kid"] for k in identity.provider.keys.jwks()["keys"]}
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "web"
    assert claims["azp"] == "web"
    assert claims["sub"] == identity.user.id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    now = time.time()
    assert claims["exp"] > now
    assert claims["iat"] <= now + 300
    assert abs(claims["auth_time"] - now) < 60
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["at_hash"] == expected

    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["aud"] == "orders"
    assert access["sub"] == identity.user.id
    assert access["client_id"] == "web"
    assert access["auth_time"] == claims["auth_time"]


async def test_a_request_without_nonce_still_works(identity):
    tokens = await identity.code_flow()

    _, claims = id_token_claims(identity, tokens["id_token"])
    assert "nonce" not in claims


async def test_without_openid_there_is_no_id_token(identity):
    tokens = await identity.code_flow(scope="orders:read")

    assert "id_token" not in tokens


async def test_a_confidential_client_authenticates_with_basic_or_post(identity):
    verifier, challenge = pkce_pair()
    params = await identity.sign_in("rp", code_challenge=challenge)
    with_basic = await identity.exchange("rp", params["code"], verifier)
    verifier, challenge = pkce_pair()
    params = await identity.sign_in(
        "other-rp", code_challenge=challenge, scope="openid"
    )
    with_post = await identity.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": "https://other.test/cb",
            "code_verifier": verifier,
            "client_id": "other-rp",
            "client_secret": SECRETS["other-rp"],
        },
    )

    assert with_basic.status_code == 200, with_basic.text
    assert with_post.status_code == 200, with_post.text
    assert with_basic.headers["cache-control"] == "no-store"


async def test_a_reused_code_fails_and_revokes_what_the_first_use_issued(identity):
    verifier, challenge = pkce_pair()
    params = await identity.sign_in(code_challenge=challenge)
    first = await identity.exchange("web", params["code"], verifier)
    second = await identity.exchange("web", params["code"], verifier)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json() == {
        "error": "invalid_grant",
        "error_description": "the authorization code was already used; "
        "the tokens issued from it are revoked",
    }
    issued = first.json()
    userinfo = await identity.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"}
    )
    refreshed = await identity.token(
        "web", {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    )
    assert userinfo.status_code == 401
    assert "revoked" in userinfo.headers["www-authenticate"]
    assert refreshed.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("verifier", "error", "description"),
    [
        pytest.param(
            None, "invalid_request", "code_verifier is required (PKCE)", id="missing"
        ),
        pytest.param(
            "x" * 43,
            "invalid_grant",
            "the code_verifier does not match the code_challenge",
            id="wrong",
        ),
        pytest.param(
            "short",
            "invalid_grant",
            "the code_verifier does not match the code_challenge",
            id="too-short",
        ),
    ],
)
async def test_a_missing_or_wrong_code_verifier_is_rejected(
    identity, verifier, error, description
):
    params = await identity.sign_in()
    data = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": "https://web.test/callback",
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    response = await identity.token("web", data)

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


async def test_a_code_is_bound_to_its_client_and_redirect_uri(identity):
    verifier, challenge = pkce_pair()
    params = await identity.sign_in(code_challenge=challenge)
    other_client = await identity.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": "https://rp.test/cb",
            "code_verifier": verifier,
        },
        headers=basic("rp"),
    )
    verifier, challenge = pkce_pair()
    params = await identity.sign_in(code_challenge=challenge)
    other_uri = await identity.exchange(
        "web", params["code"], verifier, redirect_uri="http://127.0.0.1/callback"
    )

    assert other_client.json()["error"] == "invalid_grant"
    assert other_uri.json() == {
        "error": "invalid_grant",
        "error_description": "redirect_uri differs from the authorization request's",
    }


@pytest.mark.parametrize(
    "settings_overrides", [{"authorization_code_lifetime_seconds": 5}]
)
async def test_an_expired_code_is_invalid_grant(identity):
    verifier, challenge = pkce_pair()
    params = await identity.sign_in(code_challenge=challenge)
    await asyncio.sleep(5.5)
    response = await identity.exchange("web", params["code"], verifier)

    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "the authorization code has expired",
    }


async def refresh(identity, client_id, token, **extra):
    return await identity.token(
        client_id, {"grant_type": "refresh_token", "refresh_token": token, **extra}
    )


async def test_a_refresh_rotates_the_refresh_token(identity):
    tokens = await identity.code_flow(scope="openid offline_access orders:read")
    first = await refresh(identity, "web", tokens["refresh_token"])
    second = await refresh(identity, "web", first.json()["refresh_token"])

    assert first.status_code == 200, first.text
    assert first.json()["refresh_token"] != tokens["refresh_token"]
    assert second.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    _, claims = id_token_claims(identity, first.json()["id_token"])
    assert claims["sub"] == identity.user.id


@pytest.mark.parametrize(
    "settings_overrides", [{"refresh_token_reuse_grace_seconds": 0}]
)
async def test_reusing_a_rotated_refresh_token_revokes_the_family(identity):
    tokens = await identity.code_flow(scope="openid orders:read")
    rotated = await refresh(identity, "web", tokens["refresh_token"])
    replay = await refresh(identity, "web", tokens["refresh_token"])
    newest = await refresh(identity, "web", rotated.json()["refresh_token"])

    assert rotated.status_code == 200
    assert replay.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token was already used; its grant is revoked",
    }
    assert newest.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token has been revoked",
    }


async def test_two_concurrent_refreshes_with_one_token_exactly_one_wins(identity):
    tokens = await identity.code_flow(scope="openid orders:read")
    answers = await asyncio.gather(
        *(refresh(identity, "web", tokens["refresh_token"]) for _ in range(5))
    )

    winners = [a for a in answers if a.status_code == 200]
    losers = [a for a in answers if a.status_code != 200]
    assert len(winners) == 1
    assert {a.json()["error"] for a in losers} == {"invalid_grant"}
    # Within the grace period the family survives: the winner's token works.
    after = await refresh(identity, "web", winners[0].json()["refresh_token"])
    assert after.status_code == 200, after.text


async def test_a_refresh_may_narrow_the_scope_but_not_widen_it(identity):
    tokens = await identity.code_flow(scope="openid profile orders:read")
    narrowed = await refresh(
        identity, "web", tokens["refresh_token"], scope="orders:read"
    )
    widened = await refresh(
        identity, "web", narrowed.json()["refresh_token"], scope="orders:read email"
    )
    again = await refresh(identity, "web", narrowed.json()["refresh_token"])

    assert narrowed.json()["scope"] == "orders:read"
    assert "id_token" not in narrowed.json()
    assert widened.json()["error"] == "invalid_scope"
    # The grant itself did not shrink.
    assert again.json()["scope"] == "openid orders:read profile"


async def test_a_client_cannot_use_another_clients_refresh_token(identity):
    verifier, challenge = pkce_pair()
    params = await identity.sign_in("rp", code_challenge=challenge)
    tokens = (await identity.exchange("rp", params["code"], verifier)).json()
    stolen = await refresh(identity, "other-rp", tokens["refresh_token"])
    owner = await refresh(identity, "rp", tokens["refresh_token"])

    assert stolen.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token is not valid for this client",
    }
    assert owner.status_code == 200


async def test_userinfo_by_get_post_header_and_post_body(identity):
    tokens = await identity.code_flow(scope="openid profile email")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    by_get = await identity.http.get("/userinfo", headers=bearer)
    by_post = await identity.http.post("/userinfo", headers=bearer)
    by_body = await identity.http.post(
        "/userinfo", data={"access_token": tokens["access_token"]}
    )

    for response in (by_get, by_post, by_body):
        assert response.status_code == 200, response.text
        assert response.json()["sub"] == identity.user.id
        assert response.json()["email"] == "Ada@Example.com"
        assert response.json()["email_verified"] is True
        assert response.json()["name"] == "Ada Lovelace"


async def test_userinfo_claims_follow_the_scopes(identity):
    tokens = await identity.code_flow(scope="openid email")
    response = await identity.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )

    assert set(response.json()) == {"sub", "email", "email_verified"}


async def test_userinfo_refuses_a_query_token_and_a_token_without_openid(identity):
    tokens = await identity.code_flow(scope="openid orders:read")
    in_query = await identity.http.get(
        "/userinfo", params={"access_token": tokens["access_token"]}
    )
    cc = await identity.http.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic("service")
    )
    no_openid = await identity.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {cc.json()['access_token']}"}
    )

    assert in_query.status_code == 401
    assert in_query.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token"'
    )
    assert no_openid.status_code == 403
    assert "insufficient_scope" in no_openid.headers["www-authenticate"]


async def test_revoking_a_refresh_token_revokes_its_grant(identity):
    tokens = await identity.code_flow(scope="openid orders:read")
    revoked = await identity.http.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": "web"}
    )
    refreshed = await refresh(identity, "web", tokens["refresh_token"])
    userinfo = await identity.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )

    assert revoked.status_code == 200
    assert refreshed.json()["error"] == "invalid_grant"
    assert userinfo.status_code == 401


async def test_revoking_an_unknown_token_is_not_an_error(identity):
    response = await identity.http.post(
        "/revoke", data={"token": "not-a-token"}, headers=basic("service")
    )

    assert response.status_code == 200


async def test_introspection_reports_active_and_revoked_tokens(identity):
    cc = await identity.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        headers=basic("service"),
    )
    token = cc.json()["access_token"]
    active = await identity.http.post(
        "/introspect", data={"token": token}, headers=basic("rp")
    )
    await identity.http.post("/revoke", data={"token": token}, headers=basic("service"))
    revoked = await identity.http.post(
        "/introspect", data={"token": token}, headers=basic("rp")
    )
    garbage = await identity.http.post(
        "/introspect", data={"token": "garbage"}, headers=basic("rp")
    )
    public = await identity.http.post(
        "/introspect", data={"token": token, "client_id": "web"}
    )

    assert active.json()["active"] is True
    assert active.json()["client_id"] == "service"
    assert active.json()["aud"] == "orders"
    assert revoked.json() == {"active": False}
    assert garbage.json() == {"active": False}
    assert public.status_code == 401
    assert public.json()["error"] == "invalid_client"


async def test_introspection_of_a_refresh_token(identity):
    tokens = await identity.code_flow(scope="openid orders:read")
    response = await identity.http.post(
        "/introspect", data={"token": tokens["refresh_token"]}, headers=basic("rp")
    )

    assert response.json()["active"] is True
    assert response.json()["token_type"] == "refresh_token"
    assert response.json()["client_id"] == "web"


async def test_disabling_a_user_revokes_refresh_tokens_and_sessions(identity):
    tokens = await identity.code_flow(scope="openid orders:read")
    await identity.provider.accounts.set_user_disabled(identity.user.id, True)
    refreshed = await refresh(identity, "web", tokens["refresh_token"])
    silent = await identity.authorize(prompt="none")

    assert refreshed.json()["error"] == "invalid_grant"
    assert "login_required" in silent.headers["location"]


@pytest.mark.parametrize(
    "forcing",
    [{"prompt": "login"}, {"max_age": "1"}],
    ids=["prompt-login", "max-age-1"],
)
async def test_prompt_login_and_max_age_force_a_new_login_and_move_auth_time(
    identity, forcing
):
    first = await identity.code_flow()
    _, before = id_token_claims(identity, first["id_token"])
    await asyncio.sleep(1.2)

    verifier, challenge = pkce_pair()
    page = await identity.authorize(code_challenge=challenge, **forcing)
    assert 'name="password"' in page.text
    params = redirect_params(await identity.login(page))
    second = await identity.exchange("web", params["code"], verifier)
    _, after = id_token_claims(identity, second.json()["id_token"])

    assert after["auth_time"] > before["auth_time"]


async def test_max_age_within_the_session_age_does_not_ask_again(identity):
    await identity.code_flow()
    response = await identity.authorize(max_age="3600")

    assert response.status_code == 302
    assert "code=" in response.headers["location"]
