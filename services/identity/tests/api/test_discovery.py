from .conftest import ISSUER

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


async def test_discovery_names_the_configured_issuer_and_absolute_endpoints(identity):
    response = await identity.http.get(
        "/.well-known/openid-configuration", headers={"Host": "evil.test"}
    )

    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == ISSUER
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ):
        assert document[name].startswith(ISSUER + "/"), name
    assert document["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "implicit" not in document["grant_types_supported"]
    assert "password" not in document["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )
    assert document["subject_types_supported"] == ["public"]
    assert {"openid", "profile", "email", "offline_access"} <= set(
        document["scopes_supported"]
    )


async def test_rfc8414_metadata_is_the_same_document(identity):
    oidc = await identity.http.get("/.well-known/openid-configuration")
    oauth = await identity.http.get("/.well-known/oauth-authorization-server")

    assert oauth.json() == oidc.json()


async def test_the_jwks_has_public_parts_only_and_a_cache_lifetime(identity):
    response = await identity.http.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert len(keys) == 1
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key)
        assert key["kty"] in ("RSA", "EC")
        assert key["use"] == "sig"


async def test_cors_answers_configured_origins_on_discovery_but_not_others(identity):
    identity_origins = identity.settings.cors_origins
    assert identity_origins == ["https://app.test"]
    allowed = await identity.http.get(
        "/.well-known/jwks.json", headers={"Origin": "https://app.test"}
    )
    refused = await identity.http.get(
        "/.well-known/jwks.json", headers={"Origin": "https://evil.test"}
    )
    preflight = await identity.http.options(
        "/token",
        headers={
            "Origin": "https://app.test",
            "Access-Control-Request-Method": "POST",
        },
    )

    assert allowed.headers["access-control-allow-origin"] == "https://app.test"
    assert "access-control-allow-origin" not in refused.headers
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.test"
    assert "POST" in preflight.headers["access-control-allow-methods"]


async def test_the_authorization_endpoint_never_answers_cors(identity):
    response = await identity.http.get(
        "/authorize",
        params={"client_id": "web"},
        headers={"Origin": "https://app.test"},
    )
    preflight = await identity.http.options(
        "/authorize",
        headers={"Origin": "https://app.test", "Access-Control-Request-Method": "GET"},
    )

    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


async def test_token_errors_carry_cors_headers_too(identity):
    response = await identity.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "x",
            "client_secret": "y",
        },
        headers={"Origin": "https://app.test"},
    )

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "https://app.test"
    assert response.headers["vary"] == "Origin"
