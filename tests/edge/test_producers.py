"""The synthetic producer stands in for sensors: a commit that fails is made again, a commit
that only waited too long is not (it is still queued), and it ends at its limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cityedge.edge.config import SyntheticConfig
from cityedge.edge.producers import SyntheticProducer


class FlakySink:
    """Commits every record, except that the listed attempts raise the given error first."""

    def __init__(self, failures: dict[int, BaseException]) -> None:
        self.failures = failures
        self.attempts = 0
        self.committed: list[int] = []

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: datetime) -> None:
        self.attempts += 1
        error = self.failures.pop(self.attempts, None)
        if isinstance(error, TimeoutError):
            self.committed.append(body["n"])  # it was queued: the committer still writes it
        if error is not None:
            raise error
        self.committed.append(body["n"])


def run(sink: FlakySink, limit: int) -> SyntheticProducer:
    producer = SyntheticProducer(SyntheticConfig(telemetry_per_s=500, incidents_per_min=0, limit=limit), sink)
    producer.start()
    producer._thread.join(10)
    assert not producer._thread.is_alive()
    return producer


def test_a_failed_commit_is_made_again_and_nothing_is_skipped() -> None:
    sink = FlakySink({3: OSError("disk I/O error")})
    producer = run(sink, 10)
    assert sink.committed == list(range(10)) and producer.made == 10 and sink.attempts == 11


def test_a_commit_that_timed_out_is_not_made_twice() -> None:
    sink = FlakySink({4: TimeoutError()})
    producer = run(sink, 10)
    assert sink.committed == list(range(10)) and producer.made == 10 and sink.attempts == 10
