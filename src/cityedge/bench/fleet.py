"""`cityedge bench fleet`: N simulated nodes against one control plane on this machine.

The pieces are the real ones: a Mosquitto broker, `cityedge cloud ingest` (its own process,
SQLite store), and the fleet monitor (its own process: the status table and alert rules over
what ingest stored). Simulated nodes (`fleet_sim.py`) send a heartbeat every `heartbeat_s`
and an incident per node every `incident_every_s`. Mid-run a child process holding `victims`
nodes, each on its own connection with its own last will, is SIGKILLed, and `silent` other
nodes stop sending without disconnecting (a hung agent).

Figures: `msgs_per_s` published; `ingest_lag_*_ms` from a node's publish to the store's
acknowledgement reaching it (commit included); `offline_detect_*_s` from the kill to the
fleet's `offline` transition in the store (the will path); `silent_offline_p99_s` the same
for the hung nodes (the missed-heartbeat path, 4 intervals by design); `cpu_percent` CPU of
the control plane (broker + ingest + monitor) over the steady window, 100 = one core.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from cityedge.bench.fleet_sim import AckListener, Multiplexer, Schedule, node_name, run_victims
from cityedge.deploy.mosquitto import MosquittoConfig
from cityedge.protocol.errors import CityEdgeError
from cityedge.sim.brokers import MosquittoProcess, free_port

__all__ = ["run_fleet_bench"]


def _monitor_main(database: str, heartbeat_s: float) -> None:
    """Child process: the control plane's fleet monitor, as `cityedge api serve` runs it."""
    from cityedge.cloud.fleet.config import FleetSection
    from cityedge.cloud.fleet.monitor import FleetMonitor
    from cityedge.cloud.store import make_engine, upgrade
    from cityedge.cloud.store.fleet import FleetStore

    engine = make_engine(database)
    upgrade(engine)
    monitor = FleetMonitor(FleetStore(engine), FleetSection(heartbeat_s=heartbeat_s)).start()
    while True:
        time.sleep(3600)
    monitor.stop()


def _ingest(tmp: Path, port: int, database: str) -> subprocess.Popen[bytes]:
    conf = tmp / "ingest.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "host": "127.0.0.1",
                "port": port,
                "client_id": "ingest-bench",
                "database": database,
                "backoff_base_s": 0.1,
                "backoff_cap_s": 1.0,
            }
        )
    )
    log = (tmp / "ingest.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cityedge.cli", "cloud", "ingest", "--config", str(conf)],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while b"subscribed; consuming" not in (tmp / "ingest.log").read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise CityEdgeError(f"ingest did not start:\n{(tmp / 'ingest.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def _offline_seen(database: str, watched: set[str], seen: dict[str, float]) -> None:
    from cityedge.cloud.store import make_engine
    from cityedge.cloud.store.fleet import FleetStore

    store = FleetStore(make_engine(database))
    after = 0
    while watched - set(seen):
        for t in store.transitions(after=after, limit=5000):
            after = t.id
            if t.after == "offline" and t.node in watched and t.node not in seen:
                seen[t.node] = time.monotonic()
        time.sleep(0.1)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Cpu:
    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.start = [p.cpu_times() for p in self.procs]
        self.wall = time.monotonic()
        psutil.cpu_percent(None)

    def percent(self) -> tuple[list[float], float]:
        """CPU of each process (100 = one core) over the window, and the whole machine's."""
        wall = time.monotonic() - self.wall
        used = [
            100 * ((p.cpu_times().user - s.user) + (p.cpu_times().system - s.system)) / wall
            for p, s in zip(self.procs, self.start, strict=True)
        ]
        return used, psutil.cpu_percent(None)


def run_fleet_bench(
    nodes: int, heartbeat_s: float, incident_every_s: float, victims: int, silent: int, connections: int
) -> dict[str, Any]:
    if victims + silent >= nodes:
        raise CityEdgeError("victims + silent must be fewer than nodes")
    with tempfile.TemporaryDirectory(prefix="cityedge-fleet-") as name:
        tmp = Path(name)
        broker = MosquittoProcess(
            MosquittoConfig(data_dir=tmp / "data", plain_port=free_port(), max_inflight=1000), tmp / "broker"
        ).start()
        database = f"sqlite:///{tmp}/cloud.db"
        ctx = multiprocessing.get_context("spawn")
        procs: list[Any] = []
        try:
            ingest = _ingest(tmp, broker.port, database)
            procs.append(ingest)
            monitor = ctx.Process(target=_monitor_main, args=(database, heartbeat_s), daemon=True)
            monitor.start()
            procs.append(monitor)
            return _drive(
                ctx,
                procs,
                broker,
                database,
                nodes,
                heartbeat_s,
                incident_every_s,
                victims,
                silent,
                connections,
            )
        finally:
            for p in procs:
                p.kill()
            broker.kill()


@dataclass
class _Run:
    """What one run measured, for the report."""

    killed: float = 0.0
    seen: dict[str, float] = field(default_factory=dict)
    cpu: list[float] = field(default_factory=list)
    machine_cpu: float = 0.0
    window_s: float = 0.0
    published: int = 0


def _drive(
    ctx: Any,
    procs: list[Any],
    broker: MosquittoProcess,
    database: str,
    n: int,
    heartbeat_s: float,
    incident_every_s: float,
    victims: int,
    silent: int,
    connections: int,
) -> dict[str, Any]:
    names = [node_name(i) for i in range(n)]
    victim_names, muxed = names[:victims], names[victims:]
    silent_names = frozenset(muxed[:silent])
    ready = ctx.Event()
    child = ctx.Process(target=run_victims, args=(broker.port, victim_names, heartbeat_s, ready), daemon=True)
    child.start()
    procs.append(child)
    ready.wait(60)
    mux = Multiplexer(broker.port, connections, heartbeat_s)
    acks = AckListener(broker.port, mux.sent_at, mux._lock)
    schedule = Schedule(muxed, heartbeat_s, incident_every_s, time.monotonic())
    pids = [broker.proc.pid, procs[0].pid, procs[1].pid, os.getpid()]  # type: ignore[union-attr]
    watched = set(victim_names) | set(silent_names)
    try:
        index = {name: i for i, name in enumerate(names)}
        run = _loop(schedule, mux, index, silent_names, lambda: _watch(database, watched, child), pids)
    finally:
        mux.close()
        acks.close()
    warmup = heartbeat_s + 5
    lags = [lag * 1000 for at, lag in list(acks.lags) if at - schedule.start >= warmup]
    victim_s = [run.seen[v] - run.killed for v in victim_names if v in run.seen]
    silent_s = [run.seen[s] - run.killed for s in silent_names if s in run.seen]
    undetected = len(victim_names) - len(victim_s)
    return {
        "bench": "fleet",
        "nodes": n,
        "heartbeat_s": heartbeat_s,
        "incident_every_s": incident_every_s,
        "connections": connections,
        "victims": victims,
        "silent": silent,
        "msgs_per_s": round(run.published / run.window_s, 1),
        "ingest_lag_p50_ms": _round(_pct(lags, 0.50)),
        "ingest_lag_p99_ms": _round(_pct(lags, 0.99)),
        "lag_samples": len(lags),
        "offline_detect_p50_s": _round(_pct(victim_s, 0.5)),
        "offline_detect_p99_s": _round(_pct(victim_s, 0.99)) if not undetected else None,
        "offline_undetected": undetected,
        "silent_offline_p99_s": _round(_pct(silent_s, 0.99)) if len(silent_s) == len(silent_names) else None,
        "cpu_percent": round(sum(run.cpu[:3]), 1),
        "cpu_broker_ingest_monitor": [round(c, 1) for c in run.cpu[:3]],
        "cpu_simulator": round(run.cpu[3], 1),
        "machine_cpu_percent": round(run.machine_cpu, 1),
        "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }


def _loop(
    schedule: Schedule,
    mux: Multiplexer,
    index: dict[str, int],
    silent: frozenset[str],
    kill: Any,
    pids: list[int],
) -> _Run:
    """Publish on schedule; after a warm-up interval start the CPU window; one interval later
    kill the victims and silence the silent; stop 4 intervals (and some) after that."""
    interval = schedule.interval_s
    warmup, kill_at = interval + 5, 2 * interval + 5
    end_at = kill_at + 4 * interval + 12
    run = _Run()
    cpu: _Cpu | None = None
    quiet: frozenset[str] = frozenset()
    while (now := time.monotonic() - schedule.start) < end_at:
        for node, stream in schedule.due(time.monotonic(), quiet):
            mux.publish(node, index[node], stream, schedule.next_seq(node, stream), now)
        if cpu is None and now >= warmup:
            cpu, run.published = _Cpu(pids), -mux.published
        if not run.killed and now >= kill_at:
            run.killed, run.seen = kill()
            quiet = silent
        time.sleep(0.005)
    assert cpu is not None
    run.window_s = time.monotonic() - cpu.wall
    run.cpu, run.machine_cpu = cpu.percent()
    run.published += mux.published
    return run


def _watch(database: str, watched: set[str], child: Any) -> tuple[float, dict[str, float]]:
    """SIGKILL the victims' process and watch the store for each watched node's `offline`."""
    import threading

    child.kill()
    killed = time.monotonic()
    seen: dict[str, float] = {}
    threading.Thread(target=_offline_seen, args=(database, watched, seen), daemon=True).start()
    return killed, seen


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
