"""Reports reach the agent's real outbox through the spool; notices arrive over a real broker."""

from __future__ import annotations

import queue
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cityedge.edge.app import OutboxSink
from cityedge.edge.ota.config import NotifyConfig
from cityedge.edge.ota.listener import OtaListener
from cityedge.edge.ota.spool import SpoolSink, drain
from cityedge.edge.outbox import GroupCommitter, Outbox
from cityedge.edge.records import ListSink
from cityedge.protocol.release import InstallReport, OtaNotice
from cityedge.protocol.topics import down_topic
from cityedge.sim.brokers import MosquittoProcess


def test_spooled_reports_are_committed_to_the_outbox_in_order_and_then_removed(tmp_path: Path) -> None:
    spool = SpoolSink(tmp_path / "reports")
    for outcome in ("rolled_back", "committed"):
        body = msgspec.to_builtins(InstallReport(version="1.1.0", outcome=outcome))  # type: ignore[arg-type]
        spool.emit("ota", f"ota.{outcome}", body, datetime.now(UTC))
    (tmp_path / "reports" / "zz-broken.json").write_text("{not json")
    outbox = Outbox.open(tmp_path / "outbox.db")
    group = GroupCommitter(outbox).start()
    try:
        assert drain(tmp_path / "reports", OutboxSink(outbox, group, "node-1", {"agent": "1.0.0"})) == 2
        stats = outbox.stats()
        assert stats.streams["ota"].pending == 2
        claimed = outbox.claim(10, 1 << 20)
        assert claimed is not None
        stream, records = claimed
        assert stream == "ota"
        kinds = [msgspec.json.decode(r.payload)["kind"] for r in records]
        assert kinds == ["ota.rolled_back", "ota.committed"]
    finally:
        group.stop()
        outbox.close()
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["zz-broken.bad"]


def test_a_report_is_kept_in_the_spool_when_the_sink_fails(tmp_path: Path) -> None:
    class Full(ListSink):
        def emit(self, *args: object, **kw: object) -> None:
            raise OSError("disk full")

    spool = SpoolSink(tmp_path)
    spool.emit("ota", "ota.committed", {"version": "1.1.0"}, datetime.now(UTC))
    with pytest.raises(OSError, match="disk full"):
        drain(tmp_path, Full())
    sink = ListSink()
    assert drain(tmp_path, sink) == 1 and sink.records[0].body == {"version": "1.1.0"}


def test_notices_on_down_ota_reach_the_supervisor_and_garbage_is_dropped(
    plain_broker: MosquittoProcess,
) -> None:
    notices: queue.Queue[OtaNotice | None] = queue.Queue()
    listener = OtaListener(NotifyConfig(port=plain_broker.port), "corridor-a", "node-1", notices).start()
    try:
        cloud = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cloud")
        cloud.connect("127.0.0.1", plain_broker.port)
        cloud.loop_start()
        topic = down_topic("corridor-a", "node-1", "ota")
        notice = OtaNotice(channel="staging", version="1.2.0")
        deadline = time.monotonic() + 20
        got = None
        while got is None and time.monotonic() < deadline:  # until the listener has subscribed
            cloud.publish(topic, b"garbage", qos=1).wait_for_publish(5)
            cloud.publish(topic, msgspec.json.encode(notice), qos=1).wait_for_publish(5)
            try:
                got = notices.get(timeout=0.5)
            except queue.Empty:
                continue
        assert got == notice
        other = OtaNotice(channel="canary", version="9.9.9")
        cloud.publish(down_topic("corridor-a", "node-2", "ota"), msgspec.json.encode(other), qos=1)
        time.sleep(0.5)
        while not notices.empty():
            assert notices.get() == notice  # only repeats of our own notice, never node-2's
        cloud.disconnect()
        cloud.loop_stop()
    finally:
        listener.stop()
