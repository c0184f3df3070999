"""Binding before serving: a taken port is one clear error, and the gRPC port reserved for
workers can be joined by them only, never silently by anyone already there."""

from __future__ import annotations

import socket

import pytest

from chainproof.errors import Unavailable
from chainproof.listeners import bind_rest_socket, port_of, reserve_shared_port


def _listener(*, reuse_port: bool, port: int = 0) -> socket.socket:
    s = socket.socket()
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_someone_holds_is_refused_for_sharing(reuse_port: bool) -> None:
    with _listener(reuse_port=reuse_port) as taken:
        port = port_of(taken)
        with pytest.raises(Unavailable, match=f"gRPC on 127.0.0.1:{port}: the port is taken"):
            reserve_shared_port("127.0.0.1", port)


def test_the_reserved_port_takes_the_workers_and_nobody_else() -> None:
    with reserve_shared_port("127.0.0.1", 0) as holder:
        port = port_of(holder)
        with pytest.raises(OSError, match="in use"):
            _listener(reuse_port=False, port=port)
        with _listener(reuse_port=True, port=port) as worker:
            # The holder never listens: every connection reaches a worker.
            for _ in range(5):
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    accepted, _ = worker.accept()
                    accepted.close()


def test_a_taken_rest_port_says_which_and_what_to_do() -> None:
    with _listener(reuse_port=False) as taken:
        port = port_of(taken)
        with pytest.raises(Unavailable, match=r"REST on 127.0.0.1:\d+: the port is taken; choose"):
            bind_rest_socket("127.0.0.1", port)
    with bind_rest_socket("127.0.0.1", 0) as sock:
        assert sock.get_inheritable()
