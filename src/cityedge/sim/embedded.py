"""amqtt (pure Python, MQTT 3.1.1): a broker that never answers an MQTT 5 CONNECT, for the tests of
the clients' protocol fallback. Not the pilot's embedded broker any more: amqtt 0.12 does not
deliver a persistent session's queued messages (docs/pilot.md); the pilot runs
`cityedge.sim.iotcore_broker` when Mosquitto is missing. amqtt is a dev dependency only.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

from cityedge.sim.brokers import free_port, wait_port

__all__ = ["EmbeddedBroker"]

log = logging.getLogger(__name__)


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    log.debug("embedded broker: %s", context.get("message"), exc_info=context.get("exception"))


async def _close_leftovers() -> None:
    """Close what amqtt leaves open after its shutdown: its client handlers' tasks and their
    stream writers. Left for the garbage collector, a writer of a closed loop warns
    (ResourceWarning) in whatever code runs when it is collected. Only this loop's writers."""
    loop = asyncio.get_running_loop()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for obj in gc.get_objects():
        # StreamWriter keeps its loop privately; a writer of another loop is not ours to close
        # type(), not isinstance(): isinstance reads __class__, which lazy placeholders (norfair) raise on
        ours = type(obj) is asyncio.StreamWriter and getattr(obj, "_loop", None) is loop
        if ours and not obj.transport.is_closing():
            obj.close()
    await asyncio.sleep(0.05)  # a closed transport lets go of its socket on the next turns


class EmbeddedBroker:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)
        self._broker: Any = None

    def start(self) -> EmbeddedBroker:
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        # amqtt lets connection errors escape its tasks (a cut link mid-handshake); log them.
        self._loop.set_exception_handler(_log_loop_error)
        self._thread.start()

        async def boot() -> None:
            self._broker = Broker(config, loop=self._loop)
            await self._broker.start()

        asyncio.run_coroutine_threadsafe(boot(), self._loop).result(15)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(15)
            self._broker = None
        asyncio.run_coroutine_threadsafe(_close_leftovers(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
