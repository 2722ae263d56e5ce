from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.domain.clients import (
    Client,
    check_client,
    check_redirect_uri,
    default_audience,
)
from identity.errors import InvalidClientRegistration

WEB = Client(
    client_id="web",
    client_type="public",
    name="Web",
    redirect_uris=("https://app.example.com/callback",),
    post_logout_redirect_uris=(),
    grant_types=frozenset({"authorization_code", "refresh_token"}),
    scope=frozenset({"openid", "orders:read"}),
    audience=(),
    skip_consent=False,
    token_endpoint_auth_method="none",
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com/callback?tenant=1",
        "http://localhost:3000/callback",
        "http://127.0.0.1:8400/callback",
        "http://[::1]:8400/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_acceptable_redirect_uris_register(uri):
    check_redirect_uri("redirect_uris[0]", uri)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("/callback", "expected an absolute URI, got '/callback'"),
        (
            "https://app.example.com/cb#frag",
            "a redirect URI has no fragment, got 'https://app.example.com/cb#frag'",
        ),
        (
            "http://app.example.com/cb",
            "http is allowed only for localhost or a loopback address, "
            "got 'http://app.example.com/cb'",
        ),
        ("https:///cb", "expected a host in 'https:///cb'"),
        (
            "myapp:/cb",
            "expected https, http on loopback, or a reverse-domain scheme such as "
            "com.example.app, got 'myapp:/cb'",
        ),
    ],
    ids=["relative", "fragment", "http-not-loopback", "no-host", "bare-scheme"],
)
def test_unacceptable_redirect_uris_are_refused_with_the_reason(uri, reason):
    with pytest.raises(InvalidClientRegistration) as raised:
        check_redirect_uri("redirect_uris[0]", uri)

    assert raised.value.field == "redirect_uris[0]"
    assert raised.value.reason == reason


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        (
            {"grant_types": frozenset({"client_credentials"})},
            "grant_types",
            "client_credentials is only for confidential clients",
        ),
        (
            {"grant_types": frozenset({"implicit"})},
            "grant_types",
            "unknown grant types ['implicit']; choose among "
            "['authorization_code', 'client_credentials', 'refresh_token']",
        ),
        (
            {"token_endpoint_auth_method": "client_secret_basic"},
            "token_endpoint_auth_method",
            "a public client has no secret, so its method is 'none', "
            "got 'client_secret_basic'",
        ),
        (
            {"client_type": "confidential"},
            "token_endpoint_auth_method",
            "a confidential client authenticates",
        ),
        (
            {"redirect_uris": ()},
            "redirect_uris",
            "the authorization_code grant needs a redirect URI",
        ),
        (
            {"client_id": "has space"},
            "client_id",
            "1 to 100 letters, digits or ._~- starting with a letter or digit, got 'has space'",
        ),
        (
            {"scope": frozenset({'bad"scope'})},
            "scope",
            "not a scope token (RFC 6749 3.3): 'bad\"scope'",
        ),
    ],
    ids=[
        "public-client-credentials",
        "implicit",
        "public-with-secret",
        "confidential-without-auth",
        "code-without-redirect",
        "client-id",
        "scope-token",
    ],
)
def test_incoherent_registrations_are_refused_naming_the_field(changes, field, reason):
    with pytest.raises(InvalidClientRegistration) as raised:
        check_client(replace(WEB, **changes))

    assert (raised.value.field, raised.value.reason) == (field, reason)


def test_a_missing_audience_follows_from_the_scopes():
    assert check_client(WEB).audience == ("orders",)
    assert default_audience({"openid", "orders:read", "users:write"}) == (
        "identity",
        "orders",
    )
    assert check_client(replace(WEB, audience=("billing",))).audience == ("billing",)


@given(st.text(max_size=80))
def test_any_text_as_a_redirect_uri_is_accepted_or_refused_with_a_reason(uri):
    reason = None
    try:
        check_redirect_uri("redirect_uris[0]", uri)
    except InvalidClientRegistration as refused:
        reason = refused.reason

    assert reason is None or reason.strip()


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        (
            {"redirect_uris": tuple(f"https://a.example.com/{i}" for i in range(33))},
            "redirect_uris",
            "at most 32 URIs",
        ),
        (
            {"redirect_uris": ("https://a.example.com/" + "x" * 2048,)},
            "redirect_uris[0]",
            "at most 2048 characters",
        ),
        (
            {"scope": frozenset(f"s{i}" for i in range(65))},
            "scope",
            "at most 64 values",
        ),
    ],
    ids=["many-uris", "long-uri", "many-scopes"],
)
def test_a_registration_stays_small(changes, field, reason):
    with pytest.raises(InvalidClientRegistration) as raised:
        check_client(replace(WEB, **changes))

    assert (raised.value.field, raised.value.reason) == (field, reason)
