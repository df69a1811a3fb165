"""The dashboard's live stream (Server-Sent Events): status changes, incidents and alert
events as they reach the store, from the cursors the page was rendered with, so nothing
that happened between the render and the stream's start is missed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from cityedge.cloud.store.fleet import FleetStore

__all__ = ["Cursors", "stream"]

_EVERY_S = 1.0


@dataclass
class Cursors:
    transitions: int = 0
    events: int = 0
    alerts: int = 0
    node: str | None = None
    heartbeat: str | None = None


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


def _poll(store: FleetStore, c: Cursors) -> list[str]:
    out = []
    for t in store.transitions(after=c.transitions, limit=1000):
        c.transitions = t.id
        if c.node in (None, t.node):
            out.append(_sse("status", t.as_dict()))
    for e in store.events(after=c.events, limit=200, node=c.node):
        c.events = e.arrival
        out.append(_sse("incident", e.as_dict()))
    for a in store.alert_events(after=c.alerts, node=c.node, limit=500):
        c.alerts = a["id"]
        out.append(_sse("alert", a))
    if c.node is not None:
        rows = store.nodes(c.node)
        if rows and rows[0].heartbeat_id != c.heartbeat and rows[0].heartbeat is not None:
            c.heartbeat = rows[0].heartbeat_id
            out.append(
                _sse("heartbeat", {"node": c.node, "ts": str(rows[0].heartbeat_ts), **rows[0].heartbeat})
            )
    return out


async def stream(request: Request, store: FleetStore, cursors: Cursors) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        for message in await asyncio.to_thread(_poll, store, cursors):
            yield message
        yield ": keepalive\n\n"
        await asyncio.sleep(_EVERY_S)
