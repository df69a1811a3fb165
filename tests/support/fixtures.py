"""Fixtures more than one test module uses (registered in tests/conftest.py). A module may
still define a fixture of the same name for itself; pytest then uses the module's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .databases import fresh_database
from .identity import District, LockedBroker, start_locked_broker
from .stack import Stack


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LockedBroker]:
    """A locked-down Mosquitto (mTLS, CRL, ACLs) with its district PKI."""
    locked = start_locked_broker(District(tmp_path / "pki"), tmp_path / "broker")
    try:
        yield locked
    finally:
        locked.process.kill()


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A one-machine district (rendered brokers, proxy, PKI) over each store backend."""
    with fresh_database(request.param, tmp_path) as url:
        s = Stack(tmp_path, url)
        try:
            yield s
        finally:
            s.close()
