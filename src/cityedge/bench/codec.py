"""`cityedge bench codec`: the ingest decoder (msgspec) against stdlib json + pydantic.

Ingest decodes every record it stores, so the decoder is its hot path. Both sides decode
the same batch payloads into validated envelopes (schema checks, UTC timestamps).
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cityedge.protocol.codec import decode_batch, encode_batch, encode_envelope
from cityedge.protocol.envelope import NAME_PATTERN, Envelope
from cityedge.protocol.ids import uuid7

__all__ = ["run_codec_bench"]


class _PydanticEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    node: str = Field(pattern=NAME_PATTERN)
    stream: str = Field(pattern=NAME_PATTERN)
    kind: str
    ts: AwareDatetime
    body: dict[str, Any]
    seq: int = Field(ge=0)
    v: int = 1
    ver: dict[str, str] = {}
    ttl_s: float | None = None


def _stdlib_decode(payload: bytes) -> list[_PydanticEnvelope]:
    doc = json.loads(payload)
    return [_PydanticEnvelope.model_validate(r) for r in doc["records"]]


def _payloads(batches: int, size: int) -> list[bytes]:
    out = []
    for b in range(batches):
        records = [
            encode_envelope(
                Envelope(
                    id=str(uuid7(1_760_000_000_000 + b * size + i)),
                    node="edge-node-001",
                    stream="telemetry",
                    kind="reading",
                    ts=datetime.now(UTC),
                    seq=b * size + i + 1,
                    body={"sensor": "air-1", "pm25": 12.5, "no2": 31.0, "lane": "nb-1", "count": i},
                )
            )
            for i in range(size)
        ]
        out.append(encode_batch("edge-node-001", "telemetry", records))
    return out


def _rate(fn: Any, payloads: list[bytes], size: int) -> float:
    start = time.perf_counter()
    for p in payloads:
        fn(p)
    return len(payloads) * size / (time.perf_counter() - start)


def run_codec_bench(runs: int = 5, batches: int = 200, size: int = 100) -> dict[str, Any]:
    payloads = _payloads(batches, size)
    ours, base = [], []
    for _ in range(runs):
        ours.append(_rate(decode_batch, payloads, size))
        base.append(_rate(_stdlib_decode, payloads, size))
    med_ours, med_base = statistics.median(ours), statistics.median(base)
    return {
        "decode_records_per_s": round(med_ours),
        "baseline_records_per_s": round(med_base),
        "baseline": "json.loads + pydantic v2 model_validate per record",
        "ratio": round(med_ours / med_base, 2),
        "batch_size": size,
        "runs": runs,
    }
