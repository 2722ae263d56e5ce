"""Docker, driven through its command line, for the image tests.

Builds use Debian's /usr/bin/docker with DOCKER_BUILDKIT=1 (BuildKit without a
`# syntax=` line, so nothing is pulled); BASE_IMAGE picks the Python image the
Dockerfiles start from (CI passes its local stand-in).
"""

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.programs import unavailable

DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"


def docker_program() -> str:
    """Debian's docker client if present, else whichever is on PATH."""
    if Path("/usr/bin/docker").is_file():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        unavailable("docker is not installed")
        raise AssertionError("unreachable")
    return found


def base_image() -> str:
    """The image the Dockerfiles start from: $BASE_IMAGE, else the official one."""
    return os.environ.get("BASE_IMAGE") or DEFAULT_BASE_IMAGE


@dataclass
class Docker:
    """A Docker engine reached through the CLI; every call bounded in time."""

    program: str = field(default_factory=docker_program)

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.program, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args[:3])} ... exited {result.returncode}:\n"
                f"{result.stderr[-3000:]}"
            )
        return result

    def require_engine(self) -> None:
        """Skip (laptop) or fail (CI) when no engine answers."""
        if self.run("info", "--format", "{{.ServerVersion}}", check=False).returncode:
            unavailable("no Docker engine answers")

    def build(
        self, tag: str, context: Path, dockerfile: Path, build_args: dict[str, str]
    ) -> None:
        args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
        self.run(
            "build",
            "--quiet",
            "-t",
            tag,
            "-f",
            str(dockerfile),
            *args,
            str(context),
            timeout=900,
        )

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        output = self.run(kind, "inspect", name).stdout
        loaded: list[dict[str, Any]] = json.loads(output)
        return loaded[0]

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.run("exec", container, *command, check=False, timeout=30)

    def logs(self, container: str) -> str:
        result = self.run("logs", container, check=False)
        return result.stdout + result.stderr


def unique_name(prefix: str) -> str:
    """A container or network name no other test run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it returns true, or fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} within {timeout} s")
