"""Child process for the SIGKILL test: appends and store-acks in a loop, reporting each commit on stdout.

A line is printed only after the call that committed it returned:
  c <seq> <id> <hex payload>   committed by append_many
  claim <id>:<seq> ...         about to be acked
  acked                        the ack of the last claim committed
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from cityedge.edge.outbox import Outbox, OutboxLimits
from cityedge.protocol.acks import StreamAck, seq_ranges
from cityedge.protocol.codec import encode_envelope
from cityedge.protocol.envelope import Envelope
from cityedge.protocol.ids import uuid7


def main(path: Path) -> None:
    ob = Outbox.open(path, limits=OutboxLimits(min_free_disk_bytes=0))
    out = sys.stdout
    n = 0
    while True:
        envs = []
        for _ in range(5):
            n += 1
            envs.append(
                Envelope(
                    id=str(uuid7(int(time.time() * 1000))),
                    node="edge-node-001",
                    stream="events",
                    kind="crash",
                    ts=datetime.now(UTC),
                    body={"n": n, "blob": os.urandom(8).hex()},
                )
            )
        results = ob.append_many(envs)
        for env, res in zip(envs, results, strict=True):
            assert res.seq is not None
            wire = encode_envelope(msgspec.structs.replace(env, seq=res.seq))
            out.write(f"c {res.seq} {env.id} {wire.hex()}\n")
        claimed = ob.claim(3, 1 << 20)
        if claimed is not None:
            out.write("claim " + " ".join(f"{c.record_id}:{c.seq}" for c in claimed[1]) + "\n")
            out.flush()
            ob.sent(claimed.stream, claimed.seqs)
            ob.stored(StreamAck(stream=claimed.stream, ranges=seq_ranges(claimed.seqs), epoch=ob.epoch))
            out.write("acked\n")
        out.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
