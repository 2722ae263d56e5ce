"""A small upstream for the gateway's tests, run as its own process.

``python upstream_server.py PORT [CERT KEY [CLIENT_CA]]`` serves, over TLS
with the PEM certificate chain and key when given (and then asking for a
client certificate signed by CLIENT_CA, when given):

- ``/echo/...``: the method, path, query, headers and body size it received,
  the peer address of the connection it came on and the common name of the
  client's TLS certificate;
- ``/upload``: reads the body as it streams and answers its size and SHA-256;
- ``/download?size=N``: N bytes, streamed in 64 KiB chunks;
- ``/gzip``: a gzip body with its ``Content-Encoding`` and ``Content-Length``;
- ``/status/N``: an empty answer with status N;
- ``/slow?seconds=S``: answers after S seconds;
- ``/hop``: a response carrying hop-by-hop and ``Connection``-named headers;
- ``/flaky/KEY?failures=N``: 503 for the first N requests of KEY, then 200;
- ``/_hits``: how many requests each path received.
"""

import asyncio
import gzip
import hashlib
import ssl
import sys
from collections import Counter

from aiohttp import web
from aiohttp.typedefs import Handler

GZIP_TEXT = b"the same bytes, compressed once by the upstream " * 20
GZIPPED = gzip.compress(GZIP_TEXT, mtime=0)
hits: Counter[str] = Counter()


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_bytes": len(body),
            # The gateway-side socket: shows whether connections are reused.
            "peer": list(request.transport.get_extra_info("peername") or ())
            if request.transport is not None
            else [],
            "client_certificate": _client_common_name(request),
        }
    )


def _client_common_name(request: web.Request) -> str | None:
    """The common name of the TLS client's verified certificate, if it sent one."""
    certificate = (
        request.transport.get_extra_info("peercert") if request.transport else None
    )
    if not certificate:
        return None
    for rdn in certificate["subject"]:
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


async def upload(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        digest.update(chunk)
    return web.json_response({"bytes": size, "sha256": digest.hexdigest()})


async def download(request: web.Request) -> web.StreamResponse:
    size = int(request.query["size"])
    response = web.StreamResponse()
    response.content_length = size
    await response.prepare(request)
    block = b"x" * 65536
    sent = 0
    while sent < size:
        part = block[: min(len(block), size - sent)]
        await response.write(part)
        sent += len(part)
    await response.write_eof()
    return response


async def gzipped(request: web.Request) -> web.Response:
    return web.Response(
        body=GZIPPED,
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )


async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]))


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "5")))
    return web.json_response({"slept": True})


async def hop(request: web.Request) -> web.Response:
    return web.Response(
        text="hop",
        headers={
            "Connection": "X-Internal-Hop",
            "X-Internal-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "X-Kept": "yes",
        },
    )


async def flaky(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    seen = hits[request.path]
    if seen <= int(request.query.get("failures", "1")):
        return web.Response(status=503, text=f"failure {seen} of {key}")
    return web.Response(text=f"served {key} on try {seen}")


async def hit_counts(request: web.Request) -> web.Response:
    return web.json_response(dict(hits))


@web.middleware
async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path != "/_hits":
        hits[request.path] += 1
    return await handler(request)


def main() -> None:
    app = web.Application(middlewares=[count], client_max_size=1 << 40)
    app.add_routes(
        [
            web.route("*", "/echo{tail:.*}", echo),
            web.post("/upload", upload),
            web.put("/upload", upload),
            web.get("/download", download),
            web.get("/gzip", gzipped),
            web.route("*", "/status/{code}", status),
            web.get("/slow", slow),
            web.get("/hop", hop),
            web.route("*", "/flaky/{key}", flaky),
            web.get("/_hits", hit_counts),
        ]
    )
    tls = None
    if len(sys.argv) >= 4:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(sys.argv[2], sys.argv[3])
        if len(sys.argv) == 5:
            tls.load_verify_locations(sys.argv[4])
            tls.verify_mode = ssl.CERT_REQUIRED
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), ssl_context=tls, print=None
    )


if __name__ == "__main__":
    main()
