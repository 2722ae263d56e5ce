"""The gateway runs without aiohttp, which only the tests' upstream server uses."""

import json
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

# Imports every module of the gateway and servicekit with aiohttp made
# unimportable, then asks servicekit which client libraries it would trace.
_PROBE = """
import importlib, json, pkgutil, sys
sys.modules["aiohttp"] = None
import gateway, servicekit
from opentelemetry.sdk.trace import TracerProvider
from servicekit.telemetry import instrument_libraries
for package in (gateway, servicekit):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
print(json.dumps(instrument_libraries(TracerProvider())))
"""


def test_aiohttp_is_not_a_runtime_requirement_of_the_gateway():
    names = {Requirement(r).name for r in metadata.requires("gateway") or []}

    assert "aiohttp" not in names
    assert {"servicekit", "httptools", "redis"} <= names


def test_the_gateway_and_servicekit_import_and_trace_without_aiohttp():
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert probe.returncode == 0, probe.stderr
    instrumented = json.loads(probe.stdout.strip().splitlines()[-1])
    assert "aiohttp" not in instrumented
    assert "httpx" in instrumented
