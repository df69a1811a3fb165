"""A compact in-memory index of one stream's stored records: seq -> (size, appended_at).

The outbox may hold a million records; two flat arrays cost 16 bytes a record where a dict
of tuples costs ten times that. Sequence numbers are given out in order, so a record's slot
is `seq - base`; removed records leave a hole (size -1) until the front is trimmed.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Final

__all__ = ["SeqIndex"]

_GONE: Final = -1
_TRIM_AT: Final = 4096  # trim the front once this many holes lead the arrays


class SeqIndex:
    def __init__(self, base: int = 1) -> None:
        self._base = base  # the seq of slot 0
        self._sizes = array("q")
        self._times = array("d")
        self._head = 0  # no live slot before this one
        self.records = 0
        self.bytes = 0

    def add(self, seq: int, size: int, appended_at: float) -> None:
        """Record `seq`; seqs arrive in increasing order (gaps allowed, e.g. at restore)."""
        if not self._sizes:
            self._base, self._head = seq, 0
        slot = seq - self._base
        if slot < len(self._sizes):
            raise ValueError(
                f"seq {seq} is not after the last indexed seq {self._base + len(self._sizes) - 1}"
            )
        while len(self._sizes) < slot:
            self._sizes.append(_GONE)
            self._times.append(0.0)
        self._sizes.append(size)
        self._times.append(appended_at)
        self.records += 1
        self.bytes += size

    def size(self, seq: int) -> int | None:
        slot = seq - self._base
        if 0 <= slot < len(self._sizes) and self._sizes[slot] != _GONE:
            return self._sizes[slot]
        return None

    def remove(self, seq: int) -> int | None:
        """Forget `seq`; returns its size, or None when it was not there."""
        size = self.size(seq)
        if size is None:
            return None
        self._sizes[seq - self._base] = _GONE
        self.records -= 1
        self.bytes -= size
        self._advance_head()
        return size

    def live_from(self, seq: int) -> Iterator[tuple[int, int]]:
        """(seq, size) of every stored record with a seq >= `seq`, in order."""
        slot = max(self._head, seq - self._base)
        sizes = self._sizes
        while slot < len(sizes):
            size = sizes[slot]
            if size != _GONE:
                yield self._base + slot, size
            slot += 1

    def first_seq(self) -> int | None:
        return self._base + self._head if self.records else None

    def appended_at(self, seq: int) -> float:
        return self._times[seq - self._base]

    def _advance_head(self) -> None:
        sizes = self._sizes
        while self._head < len(sizes) and sizes[self._head] == _GONE:
            self._head += 1
        if self._head >= _TRIM_AT or (self._head and self._head == len(sizes)):
            del self._sizes[: self._head]
            del self._times[: self._head]
            self._base += self._head
            self._head = 0
