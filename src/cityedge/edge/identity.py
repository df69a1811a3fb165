"""The device side of identity: enroll with a bootstrap token, renew over mTLS before expiry.

Keys are generated here and never leave the node. Each credential generation is written to
its own directory and `current` is flipped atomically, so a crash never pairs a new key with
an old certificate. `Renewer` is a thin driver around the pure `RenewalPolicy`.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry, Gauge

from cityedge.pki.keys import generate_key, key_pem, load_certificate, make_csr, write_pem_atomic
from cityedge.pki.profile import check_device_id
from cityedge.pki.renewal import RenewalDecision, RenewalPolicy
from cityedge.protocol.errors import PkiError

__all__ = ["CredentialStore", "Credentials", "Renewer", "enroll", "renew_once"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    cert_path: Path
    key_path: Path
    chain_path: Path


class CredentialStore:
    """`<dir>/gen-<n>/{device.key,device.crt}`, a `current` symlink to the newest, `<dir>/chain.pem`.

    The chain (trust anchor) lives outside the generations: it does not change on renewal,
    and a process that loaded its path once keeps a valid path.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def current_link(self) -> Path:
        return self.directory / "current"

    def current(self) -> Credentials:
        gen = self.current_link
        if not gen.exists():
            raise PkiError(f"no credentials in {self.directory} (run `cityedge enroll` first)")
        return self._in(gen.resolve())

    def _in(self, gen: Path) -> Credentials:
        return Credentials(gen / "device.crt", gen / "device.key", self.directory / "chain.pem")

    def write(self, key_bytes: bytes, cert_pem: bytes, chain_pem: bytes) -> Credentials:
        gens = sorted(int(p.name[4:]) for p in self.directory.glob("gen-*") if p.name[4:].isdigit())
        gen = self.directory / f"gen-{(gens[-1] + 1) if gens else 1}"
        creds = self._in(gen)
        write_pem_atomic(creds.key_path, key_bytes, private=True)
        write_pem_atomic(creds.cert_path, cert_pem)
        if not creds.chain_path.exists() or creds.chain_path.read_bytes() != chain_pem:
            write_pem_atomic(creds.chain_path, chain_pem)
        tmp = self.directory / f".current.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(gen.name)
        os.replace(tmp, self.current_link)
        self._prune(keep=(gen.name, *(f"gen-{n}" for n in gens[-1:])))
        return creds

    def _prune(self, keep: tuple[str, ...]) -> None:
        # The previous generation stays: the uplink may still be using it until it swaps.
        for old in self.directory.glob("gen-*"):
            if old.name not in keep:
                for f in old.iterdir():
                    f.unlink()
                old.rmdir()


def _post(client: httpx.Client, url: str, body: dict[str, str]) -> dict[str, str]:
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise PkiError(f"{url}: {exc}") from exc
    if response.status_code != 200:
        detail = (
            response.json().get("detail")
            if response.headers.get("content-type", "").startswith("application/json")
            else response.text
        )
        raise PkiError(f"{url} refused ({response.status_code}): {detail}")
    data: dict[str, str] = response.json()
    return data


def enroll(
    api_url: str, token: str, serial: str, device_id: str, store: CredentialStore, cafile: Path
) -> Credentials:
    """Generate a key here, send a CSR with the bootstrap token, store what comes back."""
    key = generate_key()
    csr = make_csr(key, check_device_id(device_id)).public_bytes(serialization.Encoding.PEM).decode()
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cafile)), timeout=30) as client:
        data = _post(client, f"{api_url}/api/v1/enroll", {"token": token, "serial": serial, "csr": csr})
    return store.write(key_pem(key), data["certificate"].encode(), data["chain"].encode())


def renew_once(api_url: str, device_id: str, store: CredentialStore) -> Credentials:
    """Renew with a fresh key, authenticated by the current certificate (mutual TLS)."""
    current = store.current()
    ctx = ssl.create_default_context(cafile=str(current.chain_path))
    ctx.load_cert_chain(str(current.cert_path), str(current.key_path))
    key = generate_key()
    csr = make_csr(key, device_id).public_bytes(serialization.Encoding.PEM).decode()
    with httpx.Client(verify=ctx, timeout=30) as client:
        data = _post(client, f"{api_url}/api/v1/renew", {"csr": csr})
    return store.write(key_pem(key), data["certificate"].encode(), data["chain"].encode())


class Renewer:
    """Renews at the policy's time, hands new files to `on_new_credentials`, exports days left."""

    def __init__(
        self,
        api_url: str,
        device_id: str,
        store: CredentialStore,
        on_new_credentials: Callable[[Path, Path], None],
        *,
        policy: RenewalPolicy | None = None,
        registry: CollectorRegistry | None = None,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_sleep_s: float = 3600.0,
    ) -> None:
        self.api_url, self.device_id, self.store = api_url, device_id, store
        self.on_new_credentials = on_new_credentials
        self.policy = policy or RenewalPolicy()
        self._draw = rand()  # one draw per certificate: the jitter must not creep each check
        self._rand, self._clock, self._max_sleep = rand, clock, max_sleep_s
        registry = registry if registry is not None else CollectorRegistry()
        self._gauge = Gauge(
            "cityedge_cert_expiry_seconds", "Seconds until the node's certificate expires", registry=registry
        )
        self._alarm = Gauge(
            "cityedge_cert_expiry_alarm",
            "1 when fewer than the alarm threshold of days remain",
            registry=registry,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: RenewalDecision | None = None
        self.last_failure: datetime | None = None
        self.renewals = 0

    @property
    def days_left(self) -> float | None:
        """For the heartbeat."""
        return None if self.last is None else round(self.last.days_left, 3)

    def heartbeat_fields(self) -> dict[str, object]:
        """What the heartbeat carries about identity (DESIGN section 8)."""
        return {
            "cert_days_left": self.days_left,
            "cert_alarm": bool(self.last and self.last.alarm),
            "cert_renewals": self.renewals,
        }

    def check(self) -> RenewalDecision:
        """One step: decide, renew when due, publish the metric; returns the decision taken."""
        cert = load_certificate(self.store.current().cert_path)
        now = self._clock()
        decision = self.policy.decide(
            cert.not_valid_before_utc, cert.not_valid_after_utc, now, self._draw, self.last_failure
        )
        if decision.renew_now:
            renewed = self._renew(now)
            # After a failure, decide again: the policy then schedules the retry.
            decision = renewed or self.policy.decide(
                cert.not_valid_before_utc, cert.not_valid_after_utc, now, self._draw, self.last_failure
            )
        self.last = decision
        self._gauge.set(decision.days_left * 86400)  # base unit: promtool refuses "days"
        self._alarm.set(1 if decision.alarm else 0)
        return decision

    def _renew(self, now: datetime) -> RenewalDecision | None:
        try:
            creds = renew_once(self.api_url, self.device_id, self.store)
        except (PkiError, OSError) as exc:
            log.warning("certificate renewal failed (will retry): %s", exc)
            self.last_failure = now
            return None
        self.renewals += 1
        self.last_failure = None
        self._draw = self._rand()
        self.on_new_credentials(creds.cert_path, creds.key_path)
        cert = load_certificate(creds.cert_path)
        return self.policy.decide(
            cert.not_valid_before_utc, cert.not_valid_after_utc, self._clock(), self._draw
        )

    def start(self) -> Renewer:
        self._thread = threading.Thread(target=self._run, name="renewer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                decision = self.check()
                wait = (decision.next_check - self._clock()).total_seconds()
            except PkiError as exc:
                log.error("certificate check failed: %s", exc)
                wait = 60.0
            self._stop.wait(min(max(wait, 0.05), self._max_sleep))
