"""Per-request values that log lines and error bodies carry.

Context variables, so that every coroutine serving a request sees its own
values without passing them through every call.
"""

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
