"""The authorization endpoint: what a browser and a client see."""

from urllib.parse import urlsplit

import pytest

from .conftest import ISSUER, pkce_pair, redirect_params


async def test_code_flow_echoes_state_and_iss(identity):
    page = await identity.authorize(state="xyz-123")
    assert page.status_code == 200
    consent = await identity.login(page)
    redirected = await identity.consent(consent)

    params = redirect_params(redirected)
    assert redirected.headers["location"].startswith("https://web.test/callback?")
    assert params["state"] == "xyz-123"
    assert params["iss"] == ISSUER
    assert len(params["code"]) >= 43


async def test_authorize_by_post_works(identity):
    page = await identity.authorize(method="POST")
    consent = await identity.login(page)
    params = redirect_params(await identity.consent(consent))

    assert "code" in params
    assert params["iss"] == ISSUER


async def test_the_login_page_has_security_headers_and_a_csrf_cookie(identity):
    page = await identity.authorize()

    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("identity_csrf=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # the test issuer is http


async def test_the_session_cookie_is_httponly_and_lax(identity):
    page = await identity.authorize()
    after_login = await identity.login(page)

    cookies = after_login.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("identity_session="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session


@pytest.mark.parametrize("settings_overrides", [{"issuer": "https://id.test/auth"}])
async def test_cookies_are_secure_under_an_https_issuer(identity):
    page = await identity.authorize()

    cookie = page.headers["set-cookie"]
    assert "Secure" in cookie
    assert "Path=/auth" in cookie


async def test_a_login_without_the_csrf_token_is_refused(identity):
    page = await identity.authorize()
    identity.http.cookies.clear()
    response = await identity.login(page)

    assert response.status_code == 403
    assert "The form expired or was not sent by this site" in response.text


async def test_a_wrong_password_shows_the_same_message_as_an_unknown_user(identity):
    page = await identity.authorize()
    wrong_password = await identity.login(page, password="not the password")
    page = await identity.authorize()
    unknown = await identity.login(page, email="nobody@example.com")

    for response in (wrong_password, unknown):
        assert response.status_code == 401
        assert "The e-mail address or the password is wrong." in response.text
        assert 'name="password"' in response.text


async def test_a_remembered_consent_is_not_asked_again(identity):
    await identity.sign_in()
    again = await identity.authorize()

    assert "code" in redirect_params(again)


async def test_prompt_consent_asks_again(identity):
    await identity.sign_in()
    again = await identity.authorize(prompt="consent")

    assert again.status_code == 200
    assert 'value="allow"' in again.text


async def test_a_skip_consent_client_never_shows_the_consent_page(identity):
    page = await identity.authorize("rp")
    redirected = await identity.login(page)

    assert "code" in redirect_params(redirected)


async def test_denying_consent_redirects_with_access_denied(identity):
    page = await identity.authorize(state="s1")
    consent = await identity.login(page)
    params = redirect_params(await identity.consent(consent, action="deny"))

    assert params["error"] == "access_denied"
    assert params["state"] == "s1"
    assert params["iss"] == ISSUER


async def test_an_unregistered_redirect_uri_shows_an_error_and_does_not_redirect(
    identity,
):
    response = await identity.authorize(redirect_uri="https://evil.test/callback")

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "is not registered for this client" in response.text


async def test_an_unknown_client_shows_an_error_and_does_not_redirect(identity):
    response = await identity.authorize(client_id="nobody")

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "no client has the client_id &#39;nobody&#39;" in response.text


async def test_a_loopback_redirect_may_use_any_port(identity):
    response = await identity.authorize(redirect_uri="http://127.0.0.1:51234/callback")
    other_path = await identity.authorize(redirect_uri="http://127.0.0.1:51234/other")

    assert response.status_code == 200
    assert 'name="password"' in response.text
    assert other_path.status_code == 400


async def test_a_redirect_uri_must_match_exactly(identity):
    response = await identity.authorize(redirect_uri="https://web.test/callback/")

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("params", "error", "description"),
    [
        pytest.param(
            {"code_challenge": None, "code_challenge_method": None},
            "invalid_request",
            "code_challenge is required (PKCE, S256)",
            id="no-pkce",
        ),
        pytest.param(
            {"code_challenge": "a" * 43, "code_challenge_method": "plain"},
            "invalid_request",
            "code_challenge_method must be 'S256', got 'plain'; 'plain' is not allowed",
            id="plain-pkce",
        ),
        pytest.param(
            {"response_type": "token"},
            "unsupported_response_type",
            "response_type must be 'code', got 'token'",
            id="implicit",
        ),
        pytest.param(
            {"scope": "openid users:write"},
            "invalid_scope",
            "the client may not ask for 'users:write'; allowed: "
            "'email offline_access openid orders:read profile'",
            id="scope",
        ),
        pytest.param(
            {"prompt": "none login"},
            "invalid_request",
            "prompt=none cannot be combined with other values",
            id="prompt-none-and-login",
        ),
        pytest.param(
            {"max_age": "soon"},
            "invalid_request",
            "max_age must be a non-negative integer, got 'soon'",
            id="max-age",
        ),
    ],
)
async def test_bad_requests_redirect_with_error_state_and_iss(
    identity, params, error, description
):
    params = redirect_params(await identity.authorize(state="keep-me", **params))

    assert params == {
        "error": error,
        "error_description": description,
        "state": "keep-me",
        "iss": ISSUER,
    }


async def test_a_repeated_parameter_is_rejected_and_unknown_ones_ignored(identity):
    _, challenge = pkce_pair()
    base = (
        "/authorize?response_type=code&client_id=web"
        "&redirect_uri=https%3A%2F%2Fweb.test%2Fcallback"
        f"&code_challenge={challenge}&code_challenge_method=S256&state=s"
    )
    repeated = await identity.http.get(base + "&scope=openid&scope=email")
    unknown = await identity.http.get(
        base + "&scope=openid&frobnicate=1&ui_locales=fr&claims_locales=fr"
        "&acr_values=1&display=page&id_token_hint=whatever&login_hint=ada%40example.com"
    )

    assert (
        redirect_params(repeated)["error_description"]
        == "the scope parameter is repeated"
    )
    assert unknown.status_code == 200
    assert 'value="ada@example.com"' in unknown.text  # login_hint fills the e-mail


async def test_a_repeated_client_id_shows_an_error_page(identity):
    response = await identity.http.get("/authorize?client_id=web&client_id=rp")

    assert response.status_code == 400
    assert "the client_id parameter is repeated" in response.text


async def test_prompt_none_without_a_session_gives_login_required_and_keeps_state(
    identity,
):
    long_state = "s" * 2000
    params = redirect_params(await identity.authorize(prompt="none", state=long_state))

    assert params["error"] == "login_required"
    assert params["state"] == long_state
    assert params["iss"] == ISSUER


async def test_prompt_none_with_a_session_succeeds_silently(identity):
    await identity.sign_in()
    params = redirect_params(await identity.authorize(prompt="none"))

    assert "code" in params


async def test_prompt_none_without_consent_gives_consent_required(identity):
    page = await identity.authorize("rp")
    await identity.login(page)  # signs in through the skip-consent client
    params = redirect_params(await identity.authorize(prompt="none"))

    assert params["error"] == "consent_required"


async def test_prompt_login_asks_for_the_password_again(identity):
    await identity.sign_in()
    again = await identity.authorize(prompt="login")

    assert again.status_code == 200
    assert 'name="password"' in again.text


async def test_the_authorize_endpoint_error_page_has_no_redirect_for_a_bad_content_type(
    identity,
):
    response = await identity.http.post("/authorize", json={"client_id": "web"})

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_logout_ends_the_session_and_returns_to_a_registered_uri(identity):
    tokens = await identity.code_flow()
    response = await identity.http.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://web.test/bye",
            "state": "bye-1",
        },
    )
    after = await identity.authorize(prompt="none")

    assert response.status_code == 303
    assert response.headers["location"] == "https://web.test/bye?state=bye-1"
    assert redirect_params(after)["error"] == "login_required"


async def test_logout_to_an_unregistered_uri_does_not_redirect(identity):
    tokens = await identity.code_flow()
    response = await identity.http.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.test/",
        },
    )

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_logout_without_a_redirect_shows_the_signed_out_page(identity):
    await identity.sign_in()
    response = await identity.http.get("/logout")

    assert response.status_code == 200
    assert "You are signed out" in response.text
    assert urlsplit(str(response.url)).path == "/logout"


async def test_empty_parameters_count_as_absent(identity):
    response = await identity.authorize(prompt="none", state="", nonce="", max_age="")

    assert redirect_params(response) == {
        "error": "login_required",
        "error_description": "the user is not signed in",
        "iss": ISSUER,
    }
