"""An application built the way every service builds its own."""

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from servicekit.application import service_app
from servicekit.logs import JsonFormatter
from servicekit.problems import Problem


class Widget(BaseModel):
    name: str = Field(min_length=1)
    count: int = Field(gt=0)


@asynccontextmanager
async def _no_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
def readiness_state() -> dict[str, bool]:
    return {"ready": True}


@pytest.fixture
def app(readiness_state: dict[str, bool]) -> FastAPI:
    async def dependency_answers() -> None:
        if not readiness_state["ready"]:
            raise ConnectionError("database down")

    app = service_app(
        title="test",
        version="0",
        description="test",
        lifespan=_no_lifespan,
        readiness={"database": dependency_answers},
    )

    @app.post("/widgets")
    async def create_widget(widget: Widget) -> Widget:
        return widget

    @app.get("/teapot")
    async def teapot() -> None:
        raise Problem(418, "Short and stout.", type_="https://example.test/teapot")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def json_logs(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The JSON lines the service would print, collected as they are written."""
    lines: list[str] = []
    formatter = JsonFormatter("test")

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(previous)
