"""Release signing keys and the `cityedge release keys` ceremony.

Offline (removable media, never the control plane's disk): root, targets and the stable
channel's three release-manager keys. Online (the control plane's `keys/`): snapshot and
timestamp (re-signed automatically before they expire) and the canary and staging channel
keys. Keys are ed25519 through securesystemslib's `CryptoSigner`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from cityedge.protocol.errors import ReleaseError

__all__ = [
    "ONLINE_ROLES",
    "KeyPlan",
    "generate",
    "load_signer",
    "load_signers",
    "write_key",
]

ONLINE_ROLES: Final = ("snapshot", "timestamp", "canary", "staging")


@dataclass(frozen=True)
class KeyPlan:
    """How many keys each role gets and how many must sign (the threshold)."""

    stable_keys: int = 3
    stable_threshold: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.stable_threshold <= self.stable_keys:
            raise ReleaseError(
                f"stable threshold {self.stable_threshold} must be between 1 and {self.stable_keys}"
            )


def generate() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def write_key(signer: CryptoSigner, path: Path) -> Path:
    """Write the private key (PEM, mode 0600) without ever leaving a readable partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_bytes)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_signer(path: Path) -> CryptoSigner:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot read signing key: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise ReleaseError(f"{path}: not a PEM private key: {exc}") from None
    return CryptoSigner(key)


def load_signers(paths: list[Path]) -> list[CryptoSigner]:
    return [load_signer(p) for p in paths]
