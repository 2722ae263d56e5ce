from gateway.headers import Forwarding, parse_networks, response_headers

FORWARDING = Forwarding(parse_networks(["10.0.0.0/8"]))


def outbound(inbound, client="192.0.2.7"):
    return FORWARDING.outbound(
        [(n.lower().encode(), v.encode()) for n, v in inbound],
        peer=client,
        scheme="http",
        request_id="rid-1",
    )


def forwarded(inbound, client="192.0.2.7"):
    return outbound(inbound, client).headers


def names(headers):
    return [name.lower() for name, _ in headers]


def test_hop_by_hop_and_connection_named_headers_are_not_forwarded():
    sent = forwarded(
        [
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic eA=="),
            ("X-Secret-Hop", "1"),
            ("Accept", "application/json"),
        ]
    )

    assert "accept" in names(sent)
    for hop in (
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
        "x-secret-hop",
    ):
        assert hop not in names(sent)


def test_authorization_passes_through_untouched():
    sent = forwarded([("Authorization", "Bearer abc.def.ghi")])

    assert ("authorization", "Bearer abc.def.ghi") in sent


def test_identity_headers_from_the_client_are_stripped():
    sent = forwarded(
        [("X-User-Id", "admin"), ("X-Forwarded-User", "root"), ("Remote-User", "x")]
    )

    assert not {"x-user-id", "x-forwarded-user", "remote-user"} & set(names(sent))


def test_forwarded_for_from_an_untrusted_peer_is_replaced():
    sent = dict(forwarded([("X-Forwarded-For", "1.2.3.4"), ("Host", "api.example")]))

    assert sent["X-Forwarded-For"] == "192.0.2.7"
    assert sent["X-Forwarded-Host"] == "api.example"
    assert sent["X-Forwarded-Proto"] == "http"
    assert "host" not in sent


def test_forwarded_for_from_a_trusted_proxy_is_extended():
    sent = dict(
        forwarded(
            [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")],
            client="10.1.2.3",
        )
    )

    assert sent["X-Forwarded-For"] == "1.2.3.4, 10.1.2.3"
    assert sent["X-Forwarded-Proto"] == "https"


def test_the_request_id_sent_upstream_is_the_gateways():
    sent = forwarded([("X-Request-ID", "spoofed")])

    assert [v for n, v in sent if n.lower() == "x-request-id"] == ["rid-1"]


def test_response_hop_by_hop_headers_are_dropped_and_encoding_kept():
    kept = response_headers(
        [
            (b"Content-Encoding", b"gzip"),
            (b"Content-Length", b"20"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Connection", b"close, X-Internal"),
            (b"X-Internal", b"1"),
            (b"Date", b"Thu, 01 Jan 2026 00:00:00 GMT"),
        ]
    )

    assert kept == [(b"Content-Encoding", b"gzip"), (b"Content-Length", b"20")]


def test_a_connection_header_drops_fields_listed_before_it():
    sent = forwarded([("X-Early", "1"), ("Connection", "X-Early"), ("Accept", "*/*")])

    assert names(sent) == [
        "accept",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-request-id",
    ]


def test_the_client_address_is_the_rightmost_untrusted_one():
    seen = outbound(
        [("X-Forwarded-For", "6.6.6.6, 198.51.100.9, 10.0.0.5")], client="10.1.1.1"
    )

    assert seen.client_address == "198.51.100.9"
    assert dict(seen.headers)["X-Forwarded-For"] == (
        "6.6.6.6, 198.51.100.9, 10.0.0.5, 10.1.1.1"
    )


def test_an_untrusted_peer_is_the_client_whatever_it_claims():
    seen = outbound([("X-Forwarded-For", "10.0.0.1")], client="203.0.113.5")

    assert seen.client_address == "203.0.113.5"


def test_the_one_pass_reads_authorization_and_length():
    seen = outbound([("Authorization", "Bearer x"), ("Content-Length", "12")])

    assert seen.authorization == b"Bearer x"
    assert seen.content_length == 12
    assert not seen.chunked
    assert outbound([("Content-Length", "1e3")]).content_length == -1
    assert outbound([("Transfer-Encoding", "chunked")]).chunked


def test_two_authorization_headers_are_not_a_bearer_token():
    seen = outbound([("Authorization", "Bearer a"), ("Authorization", "Bearer b")])

    assert seen.authorization == b"Bearer a, Bearer b"
