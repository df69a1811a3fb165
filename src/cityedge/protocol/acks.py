"""Acknowledgements that travel back down the data path.

`StoreAck`: after its database commit, ingest tells a node which sequence numbers of which
streams the store now holds (or has quarantined), as inclusive ranges. Acks are idempotent:
a lost one costs a resend the store drops by id, a repeated one deletes nothing twice. The
`epoch` names the node's outbox, so an ack for an outbox that was since wiped (and whose
sequence numbers restart) deletes nothing.

`SensorAck`: the agent tells one sensor which of its readings are committed to the outbox
(or refused for what they are), so the sensor may forget them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Final

import msgspec

from cityedge.protocol.envelope import Name, RecordId

__all__ = ["ACK_VERSION", "SensorAck", "SensorRefusal", "StoreAck", "StreamAck", "seq_ranges"]

ACK_VERSION: Final = 1
Seq = Annotated[int, msgspec.Meta(ge=0)]


class StreamAck(msgspec.Struct, frozen=True, kw_only=True):
    stream: Name
    ranges: list[tuple[Seq, Seq]]
    epoch: str | None = None


class StoreAck(msgspec.Struct, frozen=True, kw_only=True):
    node: Name
    streams: list[StreamAck]
    v: int = ACK_VERSION


class SensorRefusal(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    reason: str


class SensorAck(msgspec.Struct, frozen=True, kw_only=True):
    ids: list[RecordId] = []
    refused: list[SensorRefusal] = []
    v: int = ACK_VERSION


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges: [3, 1, 2, 7, 8] -> [(1, 3), (7, 8)]."""
    out: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out
