"""Finding the programs that tests need, and what to do when one is missing.

On a laptop a missing program skips the tests that need it, with the reason.
In CI (``CI=true``) it fails them instead, so that CI can never go green by
skipping.
"""

import os
import shutil
from pathlib import Path

import pytest

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def in_ci() -> bool:
    """Whether the suite runs in CI, where nothing may be skipped for lack of it."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip (laptop) or fail (CI) the current test because ``reason``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: tests may not skip for a missing program)")
    pytest.skip(reason)


def require_program(name: str, *, search: Path | None = None) -> str:
    """The path of program ``name``, or skip/fail saying it is missing."""
    if search is not None and (search / name).is_file():
        return str(search / name)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed")
        raise AssertionError("unreachable")
    return found
