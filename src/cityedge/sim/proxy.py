"""A TCP proxy that impairs the link between a node and the cloud broker on one machine.

`cut()` drops every open connection and refuses new ones until `restore()`. An `Impairment`
adds what a cellular link does to a TCP stream, each direction on its own: one-way latency
with jitter (order kept, as TCP keeps it), a bottleneck rate, and segment loss, which a TCP
reader sees as a stall of one retransmission timeout (head-of-line blocking). Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
from dataclasses import dataclass

__all__ = ["RTO_S", "SEGMENT_BYTES", "Impairment", "TcpProxy"]

log = logging.getLogger(__name__)

RTO_S = 0.2  # Linux's minimum retransmission timeout: what one lost segment costs the reader
SEGMENT_BYTES = 1448  # TCP payload of one Ethernet-sized segment


@dataclass(frozen=True)
class Impairment:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0  # standard deviation of a normal draw, truncated at zero extra delay
    loss: float = 0.0  # probability per segment
    rate_kbit_s: float | None = None


class _Link:
    """One direction's timing: when each chunk, read now, may be written on the far side."""

    def __init__(self, impairment: Impairment, rng: random.Random) -> None:
        self.imp = impairment
        self.rng = rng
        self.tx_free = 0.0  # when the bottleneck has sent everything queued so far
        self.last = 0.0  # chunks leave in order: never before the previous one

    def deliver_at(self, now: float, size: int) -> float:
        imp = self.imp
        sent = max(now, self.tx_free)
        if imp.rate_kbit_s:
            sent += size * 8 / (imp.rate_kbit_s * 1000.0)
        self.tx_free = sent
        delay = imp.latency_ms / 1000.0 + max(0.0, self.rng.gauss(0.0, imp.jitter_ms / 1000.0))
        segments = max(1, math.ceil(size / SEGMENT_BYTES))
        if imp.loss and self.rng.random() < 1.0 - (1.0 - imp.loss) ** segments:
            delay += RTO_S + imp.latency_ms / 1000.0  # the retransmission crosses the link again
        self.last = max(self.last, sent + delay)
        return self.last


class TcpProxy:
    def __init__(
        self,
        target_port: int,
        target_host: str = "127.0.0.1",
        listen_port: int = 0,
        *,
        impairment: Impairment | None = None,
        seed: int = 0,
    ) -> None:
        self.target = (target_host, target_port)
        self._listen_port = listen_port
        self.port = 0
        self.up = True
        self.impairment = impairment or Impairment()
        self.cuts = 0
        self.bytes_forwarded = 0
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def delay_ms(self) -> float:
        return self.impairment.latency_ms

    @delay_ms.setter
    def delay_ms(self, value: float) -> None:
        """Set a fixed one-way latency (ms), keeping the rest of the impairment."""
        imp = self.impairment
        self.impairment = Impairment(value, imp.jitter_ms, imp.loss, imp.rate_kbit_s)

    def start(self) -> TcpProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = fut.result(10)
        return self

    def stop(self) -> None:
        self._call(self._close_all)
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)

        async def cancel_pending() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_pending(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def cut(self) -> None:
        """Take the link down: open connections are reset, new ones refused."""
        self.up = False
        self.cuts += 1
        self._call(self._close_all)

    def restore(self) -> None:
        self.up = True

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals (event loop thread) -------------------------------------------------------------
    def _call(self, fn: object) -> None:
        async def run() -> None:
            fn()  # type: ignore[operator]

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(5)

    def _close_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self._writers.clear()

    async def _serve(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._listen_port)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened = [writer]
        try:  # whatever ends this (a cut, the other side, stop() cancelling it), both sockets close
            if not self.up:
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            opened.append(up_writer)
            self._writers.update(opened)
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
        finally:
            for w in opened:
                self._writers.discard(w)
                with contextlib.suppress(Exception):
                    w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read as fast as the sender sends; a writer task releases each chunk at its time."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        link = _Link(self.impairment, self._rng)
        sender = asyncio.create_task(self._release(queue, writer))
        try:
            while self.up:
                data = await reader.read(65536)
                if not data:
                    break
                if self.impairment == Impairment():
                    await queue.put((0.0, data))
                    continue
                link.imp = self.impairment
                now = self._loop.time()
                at = link.deliver_at(now, len(data))
                await queue.put((at, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            await queue.put(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await sender
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _release(
        self, queue: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter
    ) -> None:
        try:
            while (item := await queue.get()) is not None and self.up:
                at, data = item
                wait = at - self._loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not self.up:
                    return
                writer.write(data)
                await writer.drain()
                self.bytes_forwarded += len(data)
        except OSError:
            pass
