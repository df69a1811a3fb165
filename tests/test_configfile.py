"""A config file with command-line options on top: the options win, the errors name both."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityedge.cloud.config import ControlPlaneConfig
from cityedge.configfile import load_with_overrides
from cityedge.protocol.errors import ConfigError


def test_options_given_override_the_file_and_options_not_given_keep_it(tmp_path: Path) -> None:
    path = tmp_path / "cp.yaml"
    path.write_text("database: sqlite:///a.db\napi: {port: 9443, host: 10.0.0.1}\n")
    cfg = load_with_overrides(ControlPlaneConfig, path, {"database": None, "api.port": 9444, "ca_dir": None})
    assert (cfg.database, cfg.api.port, cfg.api.host) == ("sqlite:///a.db", 9444, "10.0.0.1")
    assert load_with_overrides(ControlPlaneConfig, None, {"api.port": 1}).api.port == 1


def test_a_bad_value_names_the_file_and_the_option(tmp_path: Path) -> None:
    path = tmp_path / "cp.yaml"
    path.write_text("device_cert_days: 30\n")
    with pytest.raises(
        ConfigError, match=r"cp.yaml \+ options --port: invalid config: api.port: Input should"
    ):
        load_with_overrides(ControlPlaneConfig, path, {"api.port": 0})
    path.write_text("api: 8443\n")
    with pytest.raises(ConfigError, match="api must be a mapping"):
        load_with_overrides(ControlPlaneConfig, path, {"api.port": 1})
