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
import subprocess
import sys
import tempfile
import time
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
    warmup = heartbeat_s + 5
    kill_at = warmup + heartbeat_s
    end_at = kill_at + 4 * heartbeat_s + 12
    pids = [broker.proc.pid, procs[0].pid, procs[1].pid]  # type: ignore[union-attr]
    seen: dict[str, float] = {}
    killed = None
    cpu: _Cpu | None = None
    index = {name: i for i, name in enumerate(names)}
    published_at_warmup = 0
    try:
        while (now := time.monotonic() - schedule.start) < end_at:
            quiet: frozenset[str] = silent_names if killed is not None else frozenset()
            for node, stream in schedule.due(time.monotonic(), quiet):
                mux.publish(node, index[node], stream, schedule.next_seq(node, stream), now)
            if cpu is None and now >= warmup:
                cpu, published_at_warmup = _Cpu(pids), mux.published
            if killed is None and now >= kill_at:
                killed = _kill(child)
                watcher = _watch(database, set(victim_names) | set(silent_names), seen)
            time.sleep(0.005)
        assert cpu is not None and killed is not None
        cp_cpu, machine_cpu = cpu.percent()
        window = time.monotonic() - cpu.wall
        watcher.join(5)
    finally:
        mux.close()
        acks.close()
    lags = [lag * 1000 for at, lag in list(acks.lags) if at - schedule.start >= warmup]
    victim_s = [seen[v] - killed for v in victim_names if v in seen]
    silent_s = [seen[s] - killed for s in silent_names if s in seen]
    undetected = len(victim_names) - len(victim_s)
    return {
        "bench": "fleet",
        "nodes": n,
        "heartbeat_s": heartbeat_s,
        "incident_every_s": incident_every_s,
        "connections": connections,
        "victims": victims,
        "silent": silent,
        "msgs_per_s": round((mux.published - published_at_warmup) / window, 1),
        "ingest_lag_p50_ms": _round(_pct(lags, 0.50)),
        "ingest_lag_p99_ms": _round(_pct(lags, 0.99)),
        "lag_samples": len(lags),
        "offline_detect_p50_s": _round(_pct(victim_s, 0.5)),
        "offline_detect_p99_s": _round(_pct(victim_s, 0.99)) if not undetected else None,
        "offline_undetected": undetected,
        "silent_offline_p99_s": _round(_pct(silent_s, 0.99)) if len(silent_s) == len(silent_names) else None,
        "cpu_percent": round(sum(cp_cpu), 1),
        "cpu_broker_ingest_monitor": [round(c, 1) for c in cp_cpu],
        "machine_cpu_percent": round(machine_cpu, 1),
        "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }


def _kill(child: Any) -> float:
    child.kill()
    return time.monotonic()


def _watch(database: str, watched: set[str], seen: dict[str, float]) -> Any:
    import threading

    thread = threading.Thread(target=_offline_seen, args=(database, watched, seen), daemon=True)
    thread.start()
    return thread


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
