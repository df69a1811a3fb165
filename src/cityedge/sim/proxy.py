"""A TCP proxy that impairs the link between a node and the cloud broker on one machine.

`cut()` drops every open connection and refuses new ones until `restore()`; `delay_ms`
adds one-way latency to each chunk. Used by the integration tests and the pilot's fault
schedule. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

__all__ = ["TcpProxy"]

log = logging.getLogger(__name__)


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listen_port = listen_port
        self.port = 0
        self.up = True
        self.delay_ms = 0.0
        self.cuts = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

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
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while self.up:
                data = await reader.read(65536)
                if not data:
                    break
                if self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000.0)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
