"""The login and consent pages in headless Chromium (Debian's), JavaScript off."""

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from tests.support.programs import require_program

from .conftest import DEMO_EMAIL, DEMO_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_program("chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
            ],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def open_client_callback(page: Page, prefix: str) -> list[str]:
    """Record navigations to the client's redirect URI instead of leaving the box."""
    seen: list[str] = []

    async def fulfil(route: Route) -> None:
        seen.append(route.request.url)
        await route.fulfill(
            status=200, body="client callback", content_type="text/plain"
        )

    await page.route(f"{prefix}**", fulfil)
    return seen


def pkce_challenge() -> str:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_url(base: str, client_id: str, redirect_uri: str, scope: str) -> str:
    challenge = pkce_challenge()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{base}/authorize?{urlencode(query)}"


async def test_sign_in_and_consent_without_javascript(identity_on_sqlite, browser):
    base = identity_on_sqlite.base_url
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    callbacks = await open_client_callback(page, "https://spa.test/")

    response = await page.goto(
        authorization_url(
            base, "spa", "https://spa.test/callback", "openid email orders:read"
        )
    )
    assert response is not None
    assert response.status == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    await page.fill("#email", DEMO_EMAIL)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("text=Allow access?")
    assert await page.is_visible("text=see your orders")
    await page.click("button[value=allow]")
    await page.wait_for_url("https://spa.test/callback**")

    (callback,) = callbacks
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert params["iss"] == base
    assert params["state"].startswith("st-")
    assert params["code"]
    cookies = {c["name"]: c for c in await context.cookies(base)}
    assert cookies["identity_session"]["httpOnly"] is True
    assert cookies["identity_session"]["sameSite"] == "Lax"
    await context.close()


async def test_a_wrong_password_is_shown_on_the_page(identity_on_sqlite, browser):
    base = identity_on_sqlite.base_url
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()

    await page.goto(
        authorization_url(base, "spa", "https://spa.test/callback", "openid")
    )
    await page.fill("#email", DEMO_EMAIL)
    await page.fill("#password", "not-the-password")
    await page.click("button[type=submit]")

    alert = page.get_by_role("alert")
    assert await alert.inner_text() == "The e-mail address or the password is wrong."
    assert await page.input_value("#email") == DEMO_EMAIL
    await context.close()


async def test_the_login_page_refuses_to_be_framed(identity_on_sqlite, browser):
    base = identity_on_sqlite.base_url
    context = await browser.new_context()
    page = await context.new_page()
    url = authorization_url(base, "spa", "https://spa.test/callback", "openid")

    await page.route(
        "https://attacker.test/",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<iframe id="f" src="{url}"></iframe>',
        ),
    )
    await page.goto("https://attacker.test/")
    await page.wait_for_timeout(1000)

    frame = page.frame_locator("#f")
    assert await frame.locator("#password").count() == 0
    await context.close()


async def test_an_unknown_redirect_uri_stays_on_the_error_page(
    identity_on_sqlite, browser
):
    base = identity_on_sqlite.base_url
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()

    response = await page.goto(
        authorization_url(base, "spa", "https://evil.test/callback", "openid")
    )

    assert response is not None
    assert response.status == 400
    assert page.url.startswith(base)
    assert await page.is_visible("text=The request cannot be completed")
    await context.close()
