"""`cityedge bench localbus`: how close the agent's local bus comes to the broker's own limit.

One node-local Mosquitto with mutual TLS. Per run, N sensors (paho, QoS 1, one reading per
message, each with its own id) publish M readings each as fast as the broker takes them:
first to a paho subscriber (MQTT 3.1.1, as the agent's local bus) in another process that
only counts (the limit: what the broker and a Python MQTT client can move at all), then to
the real agent (`cityedge edge run`),
which commits every reading to its outbox (group commit) before acknowledging it and is
SIGKILLed once mid-run and restarted. The agent's rate is readings committed per second;
lost and duplicates come from its outbox file.
"""

from __future__ import annotations

import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import yaml

from cityedge.bench._broker import BenchBroker, start_bench_broker, tls_files
from cityedge.protocol.topics import local_sensor_topic
from cityedge.sim.brokers import free_port
from cityedge.transport import client_tls_context, make_client

__all__ = ["run_localbus_bench"]

_COUNTER = """
import sys, threading, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, ca, cert, key, want = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
seen, done = [0], threading.Event()
def on_message(c, u, m):
    seen[0] += 1
    if seen[0] >= want: done.set()
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter", protocol=mqtt.MQTTv311)
c.tls_set(ca, cert, key)
c.on_message = on_message
c.on_subscribe = lambda *a: print("subscribed", flush=True)
c.connect("127.0.0.1", port)
c.subscribe("ce/local/v1/sensors/+/+", qos=1)
c.loop_start()
done.wait(300)
print("done", seen[0], flush=True)
"""


def _publish(env: BenchBroker, sensors: int, messages: int, tag: str) -> list[str]:
    """N sensors publish M readings each, in parallel; returns every reading id."""
    ids: list[list[str]] = [[] for _ in range(sensors)]

    def sensor(k: int) -> None:
        name = f"s{k}"
        client = make_client(f"{tag}-{name}", "5", persistent=False)
        client.tls_set_context(client_tls_context(tls_files(env.identity(name))))
        client.max_inflight_messages_set(200)
        client.connect("127.0.0.1", env.broker.port)
        client.loop_start()
        topic = local_sensor_topic(name, "telemetry")
        infos = []
        for i in range(messages):
            rid = str(uuid.uuid4())
            ids[k].append(rid)
            infos.append(
                client.publish(
                    topic, msgspec.json.encode({"id": rid, "kind": "reading", "body": {"i": i}}), 1
                )
            )
        for info in infos:
            info.wait_for_publish(120)
        client.disconnect()
        client.loop_stop()

    threads = [threading.Thread(target=sensor, args=(k,)) for k in range(sensors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [rid for chunk in ids for rid in chunk]


def _baseline(env: BenchBroker, sensors: int, messages: int) -> float:
    ident = env.identity("bench-counter")
    want = sensors * messages
    args = [str(env.broker.port), str(ident.ca_path), str(ident.cert_path), str(ident.key_path), str(want)]
    counter = subprocess.Popen([sys.executable, "-c", _COUNTER, *args], stdout=subprocess.PIPE, text=True)
    assert counter.stdout is not None
    counter.stdout.readline()  # "subscribed"
    start = time.perf_counter()
    _publish(env, sensors, messages, "base")
    counter.stdout.readline()  # "done N"
    elapsed = time.perf_counter() - start
    counter.wait(10)
    return want / elapsed


def _agent(env: BenchBroker, run: int) -> tuple[subprocess.Popen[bytes], Path, list[str]]:
    node = f"bench-node-{run}"
    ident = env.identity(node)
    data = env.tmp / node
    conf = {
        "node_id": node, "district": "bench", "data_dir": str(data),
        "uplink": {"host": "127.0.0.1", "port": free_port()},  # nowhere: the outbox keeps everything
        "outbox": {"min_free_disk_bytes": 0},
        "local_bus": {"host": "127.0.0.1", "port": env.broker.port, "client_id": node,
                      "tls": tls_files(ident).model_dump(mode="json")},
        "heartbeat": {"interval_s": 3600},
    }  # fmt: skip
    path = env.tmp / f"{node}.yaml"
    path.write_text(yaml.safe_dump(conf))
    cmd = [sys.executable, "-m", "cityedge.cli", "edge", "run", "--config", str(path)]
    log = (env.tmp / f"{node}.log").open("ab")
    return subprocess.Popen(cmd, stdout=log, stderr=log), data / "outbox.db", cmd


def _committed(outbox: Path) -> tuple[int, int]:
    """(rows, distinct ids) of sensor readings in the outbox; (0, 0) while it does not exist."""
    try:
        with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5) as db:
            rows, distinct = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT id) FROM records WHERE stream = 'telemetry'"
            ).fetchone()
        return int(rows), int(distinct)
    except sqlite3.Error:
        return 0, 0


def _agent_run(env: BenchBroker, run: int, sensors: int, messages: int) -> dict[str, float]:
    proc, outbox, cmd = _agent(env, run)
    want = sensors * messages
    while "subscribed" not in (env.tmp / f"bench-node-{run}.log").read_text():
        time.sleep(0.05)
    start = time.perf_counter()
    killed = threading.Event()

    def kill_midway() -> None:
        nonlocal proc
        while _committed(outbox)[0] < want // 2:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log = (env.tmp / f"bench-node-{run}.log").open("ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        killed.set()

    killer = threading.Thread(target=kill_midway, daemon=True)
    killer.start()
    ids = _publish(env, sensors, messages, f"run{run}")
    deadline = time.monotonic() + 300
    while (_committed(outbox)[0] < want or not killed.is_set()) and time.monotonic() < deadline:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    rows, distinct = _committed(outbox)
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as db:
        stored = {r[0] for r in db.execute("SELECT id FROM records WHERE stream = 'telemetry'")}
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    return {"records_per_s": rows / elapsed, "lost": len(set(ids) - stored), "duplicates": rows - distinct}


def run_localbus_bench(sensors: int = 4, messages: int = 10_000, runs: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cityedge-bench-") as tmpdir:
        env = start_bench_broker(Path(tmpdir))
        try:
            results = []
            for run in range(runs):
                baseline = _baseline(env, sensors, messages)
                result = _agent_run(env, run, sensors, messages)
                results.append(
                    {**result, "broker_records_per_s": baseline, "ratio": result["records_per_s"] / baseline}
                )
        finally:
            env.broker.stop()
    out: dict[str, Any] = {
        k: round(statistics.median(r[k] for r in results), 2)
        for k in ("records_per_s", "broker_records_per_s", "ratio")
    }
    out["lost"] = int(sum(r["lost"] for r in results))
    out["duplicates"] = int(sum(r["duplicates"] for r in results))
    per_run = [{k: round(v, 2) for k, v in r.items()} for r in results]
    return {"bench": "localbus", "sensors": sensors, "messages_per_sensor": messages, "runs": runs, **out,
            "agent_sigkilled_per_run": 1, "per_run": per_run}  # fmt: skip
