"""The registry's tables and queries: devices, enrollment tokens (hashed), issued certificates.

Every write runs in one transaction, so an inventory import lands whole or not at all, and a
bootstrap token is consumed in the same transaction that records the certificate it bought.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Index,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from cityedge.cloud.store.engine import reading
from cityedge.cloud.store.schema import NAME, TIMESTAMPTZ, metadata, token_table
from cityedge.protocol.errors import StoreError

__all__ = [
    "CertificateRow",
    "DeviceRecord",
    "RegistryStore",
    "TokenRow",
    "certificates",
    "devices",
    "enrollment_tokens",
]

devices = Table(
    "devices",
    metadata,
    Column("device_id", NAME, primary_key=True),
    Column("serial", String(128), nullable=False, unique=True),
    Column("model", String(128), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("mac", String(17), nullable=False, unique=True),
    Column("sim", String(128), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
)

enrollment_tokens = token_table(
    "enrollment_tokens",
    Column("serial", String(128), nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("used_at", TIMESTAMPTZ, nullable=True),
)

certificates = Table(
    "certificates",
    metadata,
    Column("serial", String(40), primary_key=True),
    Column("device_id", NAME, nullable=False),
    Column("not_before", TIMESTAMPTZ, nullable=False),
    Column("not_after", TIMESTAMPTZ, nullable=False),
    Column("issued_at", TIMESTAMPTZ, nullable=False),
    Column("via", String(16), nullable=False),
    Column("revoked_at", TIMESTAMPTZ, nullable=True),
    Column("profile", String(16), nullable=False, server_default="device"),
    Index(None, "device_id"),
    Index(None, "not_after"),
)


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    serial: str
    model: str
    ip: str
    mac: str
    sim: str
    attributes: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id, "serial": self.serial, "model": self.model, "ip": self.ip,
            "mac": self.mac, "sim": self.sim, "attributes": dict(self.attributes),
        }  # fmt: skip


@dataclass(frozen=True)
class TokenRow:
    serial: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class CertificateRow:
    serial: str
    device_id: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    via: str
    revoked_at: datetime | None
    profile: str = "device"  # or a service profile: broker, api, ingest, revoker, dashboard


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _device(row: Any) -> DeviceRecord:
    return DeviceRecord(
        row.device_id, row.serial, row.model, row.ip, row.mac, row.sim, dict(row.attributes or {})
    )


def _cert(row: Any) -> CertificateRow:
    return CertificateRow(
        row.serial, row.device_id, _utc(row.not_before), _utc(row.not_after), _utc(row.issued_at), row.via,
        _utc_or_none(row.revoked_at), row.profile,
    )  # fmt: skip


class RegistryStore:
    """Queries over the registry tables; the schema comes from migrations 0002_registry and 0004_operator."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def devices(self) -> list[DeviceRecord]:
        with reading(self.engine) as conn:
            return [_device(r) for r in conn.execute(select(devices).order_by(devices.c.device_id))]

    def device_by_serial(self, serial: str) -> DeviceRecord | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(devices).where(devices.c.serial == serial)).first()
        return _device(row) if row else None

    def device(self, device_id: str) -> DeviceRecord | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(devices).where(devices.c.device_id == device_id)).first()
        return _device(row) if row else None

    def apply_import(
        self, added: Iterable[DeviceRecord], changed: Iterable[DeviceRecord], now: datetime
    ) -> None:
        """Insert and update devices in one transaction: all of them or none."""
        try:
            with self.engine.begin() as conn:
                for dev in added:
                    conn.execute(insert(devices).values(**dev.as_dict(), created_at=now, updated_at=now))
                for dev in changed:
                    values = {**dev.as_dict(), "updated_at": now}
                    conn.execute(update(devices).where(devices.c.device_id == dev.device_id).values(**values))
        except SQLAlchemyError as exc:
            raise StoreError(f"inventory import rolled back: {exc.__class__.__name__}: {exc}") from exc

    def add_token(self, token_hash: str, serial: str, now: datetime, expires_at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(enrollment_tokens).values(
                    token_hash=token_hash, serial=serial, created_at=now, expires_at=expires_at
                )
            )

    def token(self, token_hash: str) -> TokenRow | None:
        with reading(self.engine) as conn:
            row = conn.execute(
                select(enrollment_tokens).where(enrollment_tokens.c.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        return TokenRow(row.serial, _utc(row.expires_at), _utc_or_none(row.used_at))

    def record_certificate(self, cert: CertificateRow, *, consume_token: str | None = None) -> bool:
        """Store an issued certificate; with `consume_token`, only if that token is still unused."""
        with self.engine.begin() as conn:
            if consume_token is not None and not self._consume(conn, consume_token, cert.issued_at):
                return False
            conn.execute(insert(certificates).values(**cert.__dict__))
        return True

    @staticmethod
    def _consume(conn: Connection, token_hash: str, now: datetime) -> bool:
        result = conn.execute(
            update(enrollment_tokens)
            .where(enrollment_tokens.c.token_hash == token_hash, enrollment_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return result.rowcount == 1

    def certificate(self, serial: str) -> CertificateRow | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(certificates).where(certificates.c.serial == serial)).first()
        return _cert(row) if row else None

    def certificates(self) -> list[CertificateRow]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(certificates).order_by(certificates.c.not_after))
            return [_cert(r) for r in rows]

    def revoke_device(self, device_id: str, now: datetime) -> list[str]:
        """Revoke every unrevoked certificate of a device; return their serials."""
        with self.engine.begin() as conn:
            live = certificates.c.device_id == device_id, certificates.c.revoked_at.is_(None)
            serials = [r.serial for r in conn.execute(select(certificates.c.serial).where(*live))]
            conn.execute(update(certificates).where(*live).values(revoked_at=now))
        return serials

    def revoked(self) -> list[CertificateRow]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(certificates).where(certificates.c.revoked_at.is_not(None)))
            return [_cert(r) for r in rows]

    def count_devices(self) -> int:
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(devices)).scalar_one())
