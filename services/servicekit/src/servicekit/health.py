"""Liveness and readiness endpoints.

``/healthz`` answers as long as the process serves requests: a failing
dependency must not get a healthy pod restarted. ``/readyz`` runs the service's
readiness checks (its database, the first JWKS fetch, ...) so that traffic only
reaches a replica that can serve it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from starlette.responses import Response

from servicekit.problems import ProblemResponse, problem_body

ReadinessCheck = Callable[[], Awaitable[None]]

CHECK_TIMEOUT_SECONDS = 2.0

logger = logging.getLogger(__name__)


async def _run_check(name: str, check: ReadinessCheck) -> str | None:
    """None when the check passes, otherwise why it failed."""
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:
        logger.warning(
            "readiness check failed", extra={"check": name, "error": repr(exc)}
        )
        return f"{type(exc).__name__}: {exc}"
    return None


def health_router(checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    """``/healthz`` and ``/readyz`` for a service whose readiness needs ``checks``."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        responses={503: {"description": "A dependency does not answer"}},
    )
    async def readyz() -> Response:
        names = list(checks)
        outcomes = await asyncio.gather(*(_run_check(n, checks[n]) for n in names))
        failures = {n: why for n, why in zip(names, outcomes, strict=True) if why}
        if failures:
            body = problem_body(
                503,
                "Not ready: "
                + ", ".join(f"{n} ({why})" for n, why in failures.items()),
                checks={n: failures.get(n, "ok") for n in names},
            )
            return ProblemResponse(body, status_code=503)
        return Response(content=b'{"status":"ready"}', media_type="application/json")

    return router
