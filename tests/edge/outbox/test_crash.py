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
    cmd = [sys.executable, str(CHILD), str(db)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines: list[str] = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if len(lines) >= lines_wanted:
                    break
        finally:
            proc.send_signal(signal.SIGKILL)
            # What the child wrote between our last read and the kill counts too: it kept working.
            # Read through the same buffered stream, which may already hold some of it.
            lines += proc.stdout.read().splitlines(keepends=True)
            err = proc.stderr.read()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"child ended by itself: {err}"
    return [ln.rstrip("\n") for ln in lines if ln.endswith("\n")]  # a torn last line was never reported


def test_a_sigkilled_node_keeps_every_committed_record_byte_for_byte(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    committed: dict[str, tuple[int, bytes]] = {}
    acked: dict[str, int] = {}
    unsure: dict[str, int] = {}  # claimed when killed: the ack may or may not have committed
    for _ in range(3):  # killed three times, each restart carrying on with the same outbox
        last_claim: dict[str, int] = {}
        for line in _run_and_kill(db, 300):
            if line.startswith("c "):
                _, seq, rid, wire = line.split(" ")
                committed[rid] = (int(seq), bytes.fromhex(wire))
            elif line.startswith("claim "):
                last_claim = {rid: int(seq) for rid, seq in (x.split(":") for x in line.split(" ")[1:])}
            elif line == "acked":
                acked.update(last_claim)
                last_claim = {}
        unsure.update(last_claim)
    for rid in acked:
        unsure.pop(rid, None)
    assert len(committed) > 300 and acked

    with Outbox.open(db, limits=OutboxLimits(min_free_disk_bytes=0)) as ob:
        last_seq = ob.stats().streams["events"].last_seq
        found = {}
        while (claimed := ob.claim(500, 1 << 30)) is not None:
            found.update({c.record_id: (c.seq, c.payload) for c in claimed[1]})
    for rid, record in committed.items():
        if rid in acked:
            assert rid not in found, f"acked record {rid} came back"
        elif rid not in unsure:
            assert found.get(rid) == record, f"committed record {rid} is missing or changed"
    assert len({seq for seq, _ in committed.values()}) == len(committed), "a seq was reused"
    reported_last = max(seq for seq, _ in committed.values())
    assert reported_last <= last_seq <= reported_last + 5  # at most one unreported batch
    seqs = [seq for seq, _ in found.values()] + list(acked.values())
    assert len(set(seqs)) == len(seqs)
    # Contiguous: every seq ever given is on the node, acked, or in a claim cut short by a kill.
    assert set(seqs) | set(unsure.values()) == set(range(1, last_seq + 1))
