"""What a service's own user must be able to reach, and the fixes (or shell commands) that get it there.

Mosquitto started as root reads its config, then drops to its `user` before it loads its
key, and later writes its persistence file, its pid file and the dynamic-security JSON, and
re-reads the config, ACL and CRL on SIGHUP. `plan_access` compares those needs with the
files' owners and modes; `apply` carries out what it can and returns the rest as commands.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cityedge.protocol.errors import ConfigError

__all__ = ["Fix", "ServiceUser", "apply", "plan_access"]

_READ, _SEARCH = 4, 1


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    @classmethod
    def named(cls, name: str) -> ServiceUser:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(
                f"user {name!r} does not exist on this machine (installing mosquitto creates "
                "'mosquitto'; or pass --user with the user the broker runs as)"
            ) from None
        return cls(name, pw.pw_uid, pw.pw_gid, frozenset(os.getgrouplist(name, pw.pw_gid)))

    def may(self, path: Path, bits: int) -> bool:
        """Whether this user has `bits` (read 4, write 2, search 1) on `path` by its mode."""
        st = path.stat()
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            granted = (st.st_mode >> 6) & 7
        elif st.st_gid in self.groups:
            granted = (st.st_mode >> 3) & 7
        else:
            granted = st.st_mode & 7
        return granted & bits == bits


@dataclass(frozen=True)
class Fix:
    kind: Literal["chown", "search"]
    path: Path
    why: str
    user: str = ""

    @property
    def command(self) -> str:
        if self.kind == "chown":
            group = grp.getgrgid(pwd.getpwnam(self.user).pw_gid).gr_name
            return f"chown {self.user}:{group} {self.path}"
        return f"chmod o+x {self.path}"

    def apply(self) -> None:
        if self.kind == "chown":
            pw = pwd.getpwnam(self.user)
            os.chown(self.path, pw.pw_uid, pw.pw_gid)
        else:
            os.chmod(self.path, stat.S_IMODE(self.path.stat().st_mode) | stat.S_IXOTH)


def _ancestors(path: Path) -> list[Path]:
    return list(reversed(path.absolute().parents))


def plan_access(user: ServiceUser, *, reads: Iterable[Path], owns: Iterable[Path]) -> list[Fix]:
    """Fixes so `user` can read `reads` and own `owns` (its key, its data directory and what is
    in it): ownership for what it owns, search (o+x) on directories it must pass through."""
    reads, owns = [p.absolute() for p in reads], [p.absolute() for p in owns]
    fixes: dict[tuple[str, Path], Fix] = {}
    for path in owns:
        targets = [path, *sorted(path.iterdir())] if path.is_dir() else [path]
        for target in targets:
            if target.stat().st_uid != user.uid:
                fixes[("chown", target)] = Fix(
                    "chown", target, f"{user.name} writes or keeps it private", user.name
                )
    for path in [*reads, *owns]:
        for parent in _ancestors(path):
            if ("chown", parent) not in fixes and not user.may(parent, _SEARCH):
                fixes[("search", parent)] = Fix(
                    "search", parent, f"{user.name} must pass through it to reach {path}"
                )
        if path not in owns and not user.may(path, _READ):
            fixes[("chown", path)] = Fix("chown", path, f"{user.name} must read it", user.name)
    return sorted(fixes.values(), key=lambda f: (len(f.path.parts), str(f.path), f.kind))


def apply(fixes: Iterable[Fix]) -> tuple[list[Fix], list[Fix]]:
    """(applied, not applied): what needs root and we are not stays for the operator to run."""
    done: list[Fix] = []
    left: list[Fix] = []
    for fix in fixes:
        try:
            fix.apply()
        except PermissionError:
            left.append(fix)
        else:
            done.append(fix)
    return done, left
