"""Group commit: gather appends that arrive within a few milliseconds into one transaction.

Each durable commit costs an fsync; one per sensor message caps a busy node at a few hundred
messages a second on a slow disk. Callers either wait for their own result (`commit`) or
hand in a callback (`submit`, for the local bus, which acknowledges a message to its broker
only once the callback says it is committed).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from cityedge.edge.outbox.port import AppendResult, OutboxPort
from cityedge.protocol.envelope import Envelope

__all__ = ["Done", "GroupCommitter"]

log = logging.getLogger(__name__)
_Port = TypeVar("_Port", bound=OutboxPort)

Done = Callable[[AppendResult | BaseException], None]


@dataclass(frozen=True, slots=True)
class _Item:
    env: Envelope
    done: Done


class GroupCommitter(Generic[_Port]):
    """Commits into `outbox`, which it keeps at its own type (the local bus also quarantines
    into the outbox its group commits to)."""

    def __init__(self, outbox: _Port, *, linger_s: float = 0.002, max_batch: int = 500) -> None:
        self.outbox = outbox
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.batches = 0
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self._after_batch: list[Callable[[], None]] = []

    def after_each_batch(self, fn: Callable[[], None]) -> None:
        """Call `fn` once a batch's callbacks have run (e.g. to send confirmations together)."""
        self._after_batch.append(fn)

    def start(self) -> GroupCommitter[_Port]:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what was submitted, then stop."""
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout)

    def submit(self, env: Envelope, done: Done) -> None:
        """Queue `env`; `done` gets its AppendResult (or the error) after the commit."""
        self.start()
        self._queue.put(_Item(env, done))

    def commit(self, env: Envelope, timeout: float | None = 30.0) -> AppendResult:
        """Queue `env` and wait for its commit."""
        future: Future[AppendResult] = Future()

        def done(result: AppendResult | BaseException) -> None:
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

        self.submit(env, done)
        return future.result(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = self._gather(batch)
            self._commit(batch)

    def _gather(self, batch: list[_Item]) -> bool:
        """Take what arrives within the linger time (up to max_batch); True when told to stop."""
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=self.linger_s) if self.linger_s else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _commit(self, batch: list[_Item]) -> None:
        try:
            results: list[AppendResult | BaseException] = list(
                self.outbox.append_many([i.env for i in batch])
            )
        except Exception:
            # One bad envelope fails the whole transaction: commit one by one, so it fails alone.
            results = [self._one(item.env) for item in batch]
        self.batches += 1
        for item, result in zip(batch, results, strict=True):
            try:
                item.done(result)
            except Exception:
                log.exception("group commit: a completion callback failed")
        for fn in self._after_batch:
            try:
                fn()
            except Exception:
                log.exception("group commit: an after-batch hook failed")

    def _one(self, env: Envelope) -> AppendResult | BaseException:
        try:
            return self.outbox.append_many([env])[0]
        except Exception as exc:
            return exc
