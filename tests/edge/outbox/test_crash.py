"""SIGKILL at any instant: every record a child process reported committed is there, byte for byte."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from cityedge.edge.outbox import Outbox, OutboxLimits

CHILD = Path(__file__).with_name("crash_child.py")


def _run_and_kill(db: Path, lines_wanted: int) -> list[str]:
    """Start the child, read until it has reported enough, then kill it without warning."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= lines_wanted:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"child ended by itself: {err}"
    return [ln.rstrip("\n") for ln in lines if ln.endswith("\n")]  # a torn last line was never reported


def test_a_sigkilled_node_keeps_every_committed_record_byte_for_byte(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    lines = _run_and_kill(db, 600)
    committed: dict[str, tuple[int, bytes]] = {}
    acked: set[str] = set()
    unsure: set[str] = set()  # claimed, and the kill may have come before or after the ack commit
    for line in lines:
        if line.startswith("c "):
            _, seq, rid, wire = line.split(" ")
            committed[rid] = (int(seq), bytes.fromhex(wire))
        elif line.startswith("claim "):
            unsure = set(line.split(" ")[1:])
        elif line == "acked":
            acked |= unsure
            unsure = set()
    assert len(committed) > 100 and acked

    with Outbox.open(db, limits=OutboxLimits(min_free_disk_bytes=0)) as ob:
        stats = ob.stats().streams["events"]
        found = {}
        while (claimed := ob.claim(500, 1 << 30)) is not None:
            found.update({c.record_id: (c.seq, c.payload) for c in claimed[1]})
    for rid, record in committed.items():
        if rid in acked:
            assert rid not in found, f"acked record {rid} came back"
        elif rid not in unsure:
            assert found.get(rid) == record, f"committed record {rid} is missing or changed"
    reported_last = max(seq for seq, _ in committed.values())
    assert reported_last <= stats.last_seq <= reported_last + 5  # at most one unreported batch
    seqs = sorted(seq for seq, _ in found.values()) + sorted(committed[r][0] for r in acked)
    assert sorted(set(seqs)) == sorted(seqs)
    # Contiguous: every seq up to the last one given is on the node, acked, or in the last claim.
    assert set(seqs) | {committed[r][0] for r in unsure} == set(range(1, stats.last_seq + 1))
