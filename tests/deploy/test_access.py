"""What the broker's user needs, planned from owners and modes, then applied (or left as commands)."""

from __future__ import annotations

import os
import pwd
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityedge.deploy.access import ServiceUser, apply, plan_access
from cityedge.protocol.errors import ConfigError
from tests.support.services import require


@pytest.fixture
def tree() -> Iterator[Path]:
    """A root-owned tree like `mktemp -d` makes: its top directory 0700."""
    top = Path(tempfile.mkdtemp(prefix="cityedge-access-"))
    try:
        yield top
    finally:
        import shutil

        shutil.rmtree(top, ignore_errors=True)


def broker_user() -> ServiceUser:
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        require(False, "the mosquitto user (apt-get install mosquitto creates it)")
    return ServiceUser.named("mosquitto")


def test_a_user_that_does_not_exist_is_named_with_what_to_do() -> None:
    with pytest.raises(ConfigError, match="user 'no-such-broker-user' does not exist on this machine"):
        ServiceUser.named("no-such-broker-user")


def test_the_plan_gives_the_key_and_data_to_the_user_and_search_on_the_way(tree: Path) -> None:
    user = broker_user()
    (tree / "b" / "data").mkdir(parents=True)
    (tree / "b" / "data" / "dynsec.json").write_text("{}")
    key, cert = tree / "b" / "broker.key", tree / "b" / "broker.crt"
    key.write_text("k")
    key.chmod(0o600)
    cert.write_text("c")
    cert.chmod(0o644)
    os.chmod(tree, 0o700)
    fixes = plan_access(user, reads=[cert], owns=[tree / "b" / "data", key])
    commands = [f.command for f in fixes]
    group = "mosquitto"
    assert commands == [
        f"chmod o+x {tree}",
        f"chown mosquitto:{group} {tree / 'b' / 'broker.key'}",
        f"chown mosquitto:{group} {tree / 'b' / 'data'}",
        f"chown mosquitto:{group} {tree / 'b' / 'data' / 'dynsec.json'}",
    ]
    if os.geteuid() != 0:
        return  # only root can give files away; the commands above are what the operator runs
    done, left = apply(fixes)
    assert (len(done), left) == (4, [])
    assert user.may(key, 4) and user.may(cert, 4) and user.may(tree, 1)
    assert not user.may(tree, 4), "search only: the user cannot list the directory"
    assert key.stat().st_uid == pwd.getpwnam("mosquitto").pw_uid and key.stat().st_mode & 0o777 == 0o600
    assert plan_access(user, reads=[cert], owns=[tree / "b" / "data", key]) == []


def test_a_public_file_the_user_can_read_needs_nothing(tree: Path) -> None:
    user = broker_user()
    tree.chmod(0o711)  # search only, for everyone: what a broker needs on the way
    (tree / "chain.pem").write_text("c")
    (tree / "chain.pem").chmod(0o644)
    assert plan_access(user, reads=[tree / "chain.pem"], owns=[]) == []
