"""Who is calling: the verified token, as a :class:`Caller` with enough scope."""

from typing import Annotated

from fastapi import Depends, Request

from orders.api.errors import REALM
from orders.domain.access import ADMIN, READ, WRITE, Caller
from servicekit.bearer import BearerAuthentication, invalid_token


async def _caller(request: Request, *any_of: str) -> Caller:
    bearer: BearerAuthentication = request.app.state.bearer
    token = await bearer.authenticate(request)
    if token.subject is None:
        # RFC 9068 section 2.2: sub is REQUIRED; ownership cannot be decided without.
        raise invalid_token("the token has no 'sub' claim", realm=REALM)
    bearer.require(token, any_of)
    return Caller(subject=token.subject, scopes=token.scopes)


# One flat dependency each: FastAPI's dependency solving is a large share of a
# fast request, and every nested dependency pays it again.
async def reader(request: Request) -> Caller:
    """The caller, if allowed to read; for a handler that authenticates itself."""
    return await _caller(request, READ, ADMIN)


async def _writer(request: Request) -> Caller:
    return await _caller(request, WRITE, ADMIN)


Reader = Annotated[Caller, Depends(reader)]
"""A caller allowed to read: ``orders:read`` (own orders) or ``orders:admin``."""

Writer = Annotated[Caller, Depends(_writer)]
"""A caller allowed to change: ``orders:write`` (own orders) or ``orders:admin``."""
