"""Loading settings that fail fast.

A service reads its settings once, at start-up. A bad value stops it with one
line per problem naming the environment variable, the value given and what was
expected, and exit status 2, so that a misconfigured pod crash-loops with a
readable reason instead of failing on its first request.
"""

import os
import sys
from typing import NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ConfigurationError(ValueError):
    """The configuration cannot be used; the message says which part and why."""


# Variables whose values are secrets: a bad one is described, never echoed.
_SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN")


def _shown(variable: str, given: str) -> str:
    if any(word in variable.split("_") for word in _SECRET_WORDS):
        return f"a value of {len(given)} characters, not shown"
    return repr(given)


def describe_settings_errors(
    cls: type[BaseSettings], exc: ValidationError
) -> list[str]:
    """One readable line per invalid setting, naming its environment variable."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = f"{prefix}{field}".upper()
        given = os.environ.get(variable)
        shown = "nothing" if given is None else _shown(variable, given)
        lines.append(f"{variable}: {error['msg']} (given {shown})")
    return lines


def exit_on_configuration_error(service: str, lines: list[str]) -> NoReturn:
    """Print why the configuration is unusable and stop the process."""
    for line in lines:
        print(f"{service}: invalid configuration: {line}", file=sys.stderr)
    sys.exit(2)


def load_settings(cls: type[SettingsT], service: str) -> SettingsT:
    """Read ``cls`` from the environment, or stop the process explaining why not."""
    try:
        return cls()
    except ValidationError as exc:
        exit_on_configuration_error(service, describe_settings_errors(cls, exc))
    except ConfigurationError as exc:
        exit_on_configuration_error(service, [str(exc)])
