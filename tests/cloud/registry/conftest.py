"""A registry on a fresh database (SQLite, and PostgreSQL when present) with an initialised CA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cityedge.cloud.registry import Registry
from cityedge.cloud.store import make_engine, upgrade
from cityedge.cloud.store.registry import RegistryStore
from cityedge.pki import init_ca
from tests.support.databases import fresh_database
from tests.support.registry import NOW


@pytest.fixture(scope="session")
def ca_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("registry-ca")
    init_ca(tmp / "offline", tmp / "ca", name="test", now=NOW)
    return tmp / "offline", tmp / "ca"


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, ca_dirs: tuple[Path, Path]
) -> Iterator[Registry]:
    import shutil

    from cityedge.pki import CaLayout

    ca_dir = tmp_path / "ca"
    shutil.copytree(ca_dirs[1], ca_dir)  # each test revokes into its own CRL
    with fresh_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        try:
            yield Registry(RegistryStore(engine), CaLayout(ca_dir))
        finally:
            engine.dispose()
