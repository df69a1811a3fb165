"""The live view while a pilot runs (Rich): time, links, backlog and incidents per node, SLOs so far."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cityedge.protocol.spec_model import UseCaseSpec
from cityedge.sim.pilot.stats import percentile

__all__ = ["LiveProgress"]


class LiveProgress:
    """Called by the runner with each event; redraws at most once a second."""

    def __init__(self, spec: UseCaseSpec, console: Console) -> None:
        self.spec = spec
        self.live = Live(
            Text("starting the district ..."), console=console, refresh_per_second=4, transient=False
        )
        self._after: int | None = None
        self._delays: list[tuple[float, float]] = []  # (stored at, delay)
        self._incidents: dict[str, int] = {}  # incidents stored in the cloud, per node
        self._drawn = 0.0

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        if time.monotonic() - self._drawn < 1.0:
            return
        self._drawn = time.monotonic()
        if event["phase"] == "rendering":
            self.live.update(
                Text(f"rendering {event['cameras']} camera scenes (cached for the next run) ...")
            )
            return
        stack = event["stack"]
        if event["phase"] == "ready":
            self.live.console.print(
                f"dashboard: {stack.dashboard_url} (log in with the operator token {stack.operator_token})"
            )
            self.live.update(Text(f"district up; cameras start in {event['start_at'] - time.time():.0f} s"))
            return
        self._poll_store(stack)
        self.live.update(
            Group(self._header(event), self._nodes(stack, event.get("driver")), self._slos(stack))
        )

    def _header(self, event: dict[str, Any]) -> Text:
        if event["phase"] == "draining":
            return Text("cameras done; draining the nodes' outboxes into the cloud ...", style="bold")
        elapsed = max(0.0, event["now"] - event["start_at"])
        return Text(f"{self.spec.title}: {elapsed:5.0f} / {event['run_s']:.0f} s of scene time", style="bold")

    def _poll_store(self, stack: Any) -> None:
        for row in stack.store.records(after=self._after, limit=5000):
            self._after = row.arrival
            if row.stream == "will":  # the broker's note that a connection died
                continue
            if row.stream == "events" and row.kind == "incident":
                self._incidents[row.node] = self._incidents.get(row.node, 0) + 1
            self._delays.append((row.received_at.timestamp(), (row.received_at - row.ts).total_seconds()))
        cutoff = time.time() - 10.0
        self._delays = [d for d in self._delays if d[0] >= cutoff]

    def _nodes(self, stack: Any, driver: Any) -> Table:
        table = Table(
            "node", "link", "uplink", "backlog", "fps", "incidents in cloud", "p99 latency ms (5 s)"
        )
        for link in stack.links:
            st = stack.agents[link.node].status()
            up = "[green]up[/green]" if link.proxy.up else "[red]OUTAGE[/red]"
            uplink = "connected" if st["uplink"] else "[yellow]reconnecting[/yellow]"
            table.add_row(
                link.node,
                up,
                uplink,
                str(st["backlog"]),
                f"{st['fps']:.1f}",
                str(self._incidents.get(link.node, 0)),
                f"{st['p99_ms']:.1f}",
            )
        return table

    def _slos(self, stack: Any) -> Text:
        delays = [d for _t, d in self._delays]
        p99 = percentile(delays, 99)
        target = self.spec.cloud_sync.target_s
        sync = "-" if p99 is None else f"{p99:.3f} s ({'ok' if p99 <= target else 'over'} {target:g} s)"
        return Text(
            f"cloud sync p99, last 10 s: {sync}   pixel monitor: {stack.monitor.stats.messages} messages, "
            f"{len(stack.monitor.stats.violations)} violations"
        )
