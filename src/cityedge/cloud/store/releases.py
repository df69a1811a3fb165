"""Rollout state, kept as the policy's own JSON so the API shows exactly what drives it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Engine, String, Table, Text, select, update

from cityedge.cloud.store.engine import reading
from cityedge.cloud.store.schema import TIMESTAMPTZ, metadata

__all__ = ["RolloutStore", "rollouts"]

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("version", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
)


class RolloutStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, rollout_id: str, version: str, status: str, state: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            values = {"version": version, "status": status, "state": state, "updated_at": now}
            done = conn.execute(update(rollouts).where(rollouts.c.id == rollout_id).values(**values)).rowcount
            if not done:
                conn.execute(rollouts.insert().values(id=rollout_id, created_at=now, **values))

    def load(self, rollout_id: str) -> str | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(rollouts.c.state).where(rollouts.c.id == rollout_id)).first()
        return row.state if row else None

    def all(self) -> list[str]:
        with reading(self.engine) as conn:
            return [r.state for r in conn.execute(select(rollouts.c.state).order_by(rollouts.c.created_at))]
