import time

import jwt
import pytest

from identity.keys.material import thumbprint

from .conftest import ISSUER, SECRETS, basic


def _decode(token, identity):
    header = jwt.get_unverified_header(token)
    key = identity.provider.keys.find(header["kid"])
    return header, jwt.decode(
        token,
        key.private_key.public_key(),
        algorithms=[header["alg"]],
        audience="orders",
        issuer=ISSUER,
    )


async def test_client_credentials_with_basic_gives_an_rfc9068_access_token(identity):
    response = await identity.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        headers=basic("service"),
    )

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "orders:read"
    assert body["expires_in"] == 600
    assert "refresh_token" not in body
    header, claims = _decode(body["access_token"], identity)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    (jwk,) = identity.provider.keys.jwks()["keys"]
    assert header["kid"] == jwk["kid"] == thumbprint(jwk)
    assert claims["sub"] == claims["client_id"] == "service"
    assert claims["aud"] == "orders"
    assert claims["scope"] == "orders:read"
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 5
    assert len(claims["jti"]) >= 16
    assert "auth_time" not in claims


async def test_client_secret_post_works_too(identity):
    response = await identity.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "service",
            "client_secret": SECRETS["service"],
        },
    )

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "orders:read orders:write users:read"


async def test_resource_selects_the_audience(identity):
    response = await identity.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "scope": "users:read",
            "resource": "identity",
        },
        headers=basic("service"),
    )

    assert response.status_code == 200, response.text
    claims = jwt.decode(
        response.json()["access_token"], options={"verify_signature": False}
    )
    assert claims["aud"] == "identity"


async def test_an_unknown_resource_is_invalid_target(identity):
    response = await identity.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": "https://evil.test"},
        headers=basic("service"),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        pytest.param(
            {
                "grant_type": "client_credentials",
                "client_id": "service",
                "client_secret": "wrong",
            },
            {},
            401,
            "invalid_client",
            id="wrong-secret",
        ),
        pytest.param(
            {
                "grant_type": "client_credentials",
                "client_id": "nobody",
                "client_secret": "x",
            },
            {},
            401,
            "invalid_client",
            id="unknown-client",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_id": "web"},
            {},
            400,
            "unauthorized_client",
            id="public-client",
        ),
        pytest.param(
            {"grant_type": "password", "username": "a", "password": "b"},
            "service",
            400,
            "unsupported_grant_type",
            id="password-grant",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "scope": "users:write"},
            "service",
            400,
            "invalid_scope",
            id="scope-not-allowed",
        ),
        pytest.param(
            {"scope": "orders:read"},
            "service",
            400,
            "invalid_request",
            id="no-grant-type",
        ),
    ],
)
async def test_bad_token_requests_get_rfc6749_errors(
    identity, data, headers, status, error
):
    sent_headers = basic(headers) if isinstance(headers, str) else headers
    response = await identity.http.post("/token", data=data, headers=sent_headers)

    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert response.headers["cache-control"] == "no-store"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_repeated_parameter_is_rejected(identity):
    response = await identity.http.post(
        "/token",
        content="grant_type=client_credentials&scope=orders:read&scope=orders:write",
        headers={
            **basic("service"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "the scope parameter is repeated",
    }


async def test_a_json_body_is_invalid_request(identity):
    response = await identity.http.post(
        "/token", json={"grant_type": "client_credentials"}, headers=basic("service")
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_wrong_secret_right_after_a_success_is_still_refused(identity):
    data = {"grant_type": "client_credentials", "client_id": "service"}
    right = await identity.http.post(
        "/token", data={**data, "client_secret": SECRETS["service"]}
    )
    wrong = await identity.http.post("/token", data={**data, "client_secret": "nope"})

    assert right.status_code == 200
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


@pytest.mark.parametrize("settings_overrides", [{"signing_algorithm": "ES256"}])
async def test_es256_tokens_when_configured(identity):
    response = await identity.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        headers=basic("service"),
    )
    discovery = await identity.http.get("/.well-known/openid-configuration")

    header, claims = _decode(response.json()["access_token"], identity)
    assert header["alg"] == "ES256"
    assert claims["aud"] == "orders"
    assert discovery.json()["id_token_signing_alg_values_supported"] == ["ES256"]


async def test_a_form_that_is_not_utf8_or_too_large_is_invalid_request(identity):
    form = {**basic("service"), "Content-Type": "application/x-www-form-urlencoded"}
    latin1 = await identity.http.post(
        "/token", content=b"grant_type=client_credentials&scope=\xff", headers=form
    )
    many = await identity.http.post(
        "/token", content="&".join(f"f{i}=1" for i in range(101)), headers=form
    )

    assert latin1.status_code == 400
    assert latin1.json()["error_description"] == "the form is not UTF-8"
    assert many.status_code == 400
    assert many.json()["error_description"] == "the form has more than 100 fields"


@pytest.mark.parametrize(
    "settings_overrides",
    [{"signing_algorithm": "RS256"}, {"signing_algorithm": "ES256"}],
    ids=["RS256", "ES256"],
)
async def test_tokens_signed_without_pyjwt_encode_verify_with_the_published_jwks(
    identity,
):
    # identity builds the JWS compact serialisation itself (RFC 7515 section
    # 7.1); a relying party that only has PyJWT and the JWKS must accept it.
    response = await identity.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        headers=basic("service"),
    )
    published = (await identity.http.get("/.well-known/jwks.json")).json()

    token = response.json()["access_token"]
    segments = token.split(".")
    assert len(segments) == 3
    assert all(segment and "=" not in segment for segment in segments)
    header = jwt.get_unverified_header(token)
    assert list(header) == ["alg", "kid", "typ"]
    key = jwt.PyJWKSet.from_dict(published)[header["kid"]]
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience="orders",
        issuer=ISSUER,
    )
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == claims["client_id"] == "service"
    assert claims["scope"] == "orders:read"
