"""Fixtures every test folder can use: real servers and real service processes."""

pytest_plugins = [
    "tests.support.servers",
    "tests.support.processes",
    "tests.support.tokens",
    "tests.support.otlp",
]
