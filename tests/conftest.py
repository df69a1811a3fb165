"""Shared fixtures: real brokers and databases (see tests/support/services.py)."""

pytest_plugins = ["tests.support.services", "tests.support.fixtures"]
