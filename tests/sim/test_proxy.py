import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cityedge.sim.proxy import RTO_S, Impairment, TcpProxy, _Link


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


def timed_roundtrip(port: int, data: bytes) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        started = time.perf_counter()
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            got += s.recv(65536)
        return time.perf_counter() - started


def test_latency_applies_each_way_and_keeps_the_bytes_in_order(echo_port: int) -> None:
    with TcpProxy(echo_port, impairment=Impairment(latency_ms=150.0)) as proxy:
        assert 0.29 <= timed_roundtrip(proxy.port, b"ping") < 0.6
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            for i in range(50):
                s.sendall(f"{i:03d}".encode())
            got = b""
            while len(got) < 150:
                got += s.recv(1024)
        assert got == b"".join(f"{i:03d}".encode() for i in range(50))


def test_jitter_never_reorders_and_loss_costs_a_retransmission(echo_port: int) -> None:
    with TcpProxy(echo_port, impairment=Impairment(latency_ms=10.0, loss=1.0)) as proxy:
        # every segment lost once: each direction waits RTO + one more crossing
        assert timed_roundtrip(proxy.port, b"x") >= 2 * (RTO_S + 0.02)
    link = _Link(Impairment(latency_ms=50.0, jitter_ms=40.0), random.Random(1))
    times = [link.deliver_at(i * 0.001, 100) for i in range(200)]
    assert times == sorted(times) and min(times) >= 0.05


def test_the_rate_limit_spreads_a_burst(echo_port: int) -> None:
    with TcpProxy(echo_port, impairment=Impairment(rate_kbit_s=800.0)) as proxy:
        # 40 kB at 100 kB/s, each way (the echo waits for the bytes to arrive)
        assert timed_roundtrip(proxy.port, bytes(40_000)) >= 0.6
