import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from cityedge.sim.proxy import TcpProxy


def _echo(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        while data := conn.recv(1024):
            conn.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()


def roundtrip(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(data)
        return s.recv(1024)


def test_proxy_forwards_then_cuts_then_restores(echo_port: int) -> None:
    with TcpProxy(echo_port) as proxy:
        assert roundtrip(proxy.port, b"hello") == b"hello"
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as held:
            held.sendall(b"x")
            assert held.recv(10) == b"x"
            proxy.cut()
            # the open connection is closed under us: reads end or reset
            with contextlib.suppress(ConnectionResetError):
                assert held.recv(10) == b""
        # while cut, new connections get nothing through
        with contextlib.suppress(ConnectionResetError):
            assert roundtrip(proxy.port, b"again") == b""
        proxy.restore()
        assert roundtrip(proxy.port, b"back") == b"back"
        assert proxy.cuts == 1
