"""The server's listening sockets, bound before anything is served.

Owns binding the REST socket (which uvicorn then serves, in one process or in each worker of
``chainproof serve --workers N``) and reserving the gRPC port for the workers that share it.
Binding up front turns a taken port into one clear error before any service starts, instead of
a worker dying half-started. Nothing here knows about HTTP or gRPC.

Why the gRPC port is *reserved* rather than handed over: grpcio cannot serve a socket it did
not bind, so each worker binds the port itself with ``SO_REUSEPORT`` and the kernel spreads
connections between them. ``SO_REUSEPORT`` would also let any other process of the same user
join silently, so :func:`reserve_shared_port` first proves the port free with an exclusive
bind, then holds it with a bound, never-listening socket: only listening sockets receive
connections, and the holder keeps the port for this server while workers come and go. See
docs/adr/0141-workers-share-ports.md.
"""

from __future__ import annotations

import contextlib
import errno
import socket

from chainproof.errors import Unavailable

__all__ = ["bind_rest_socket", "close_quietly", "port_of", "reserve_shared_port"]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _refused(what: str, host: str, port: int, exc: OSError, hint: str) -> Unavailable:
    reason = (
        "the port is taken"
        if exc.errno == errno.EADDRINUSE
        else "the address is not local"
        if exc.errno == errno.EADDRNOTAVAIL
        else (exc.strerror or str(exc))
    )
    return Unavailable(f"cannot listen for {what} on {_address(host, port)}: {reason}; {hint}")


def bind_rest_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket for REST on ``host:port`` (0: any free port), inheritable by
    worker processes. Raises Unavailable saying why when it cannot be bound."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restarted server may bind while old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _refused(
            "REST", host, port, exc, "choose another port (--port, CHAINPROOF_PORT)"
        ) from None
    sock.set_inheritable(True)
    return sock


def reserve_shared_port(host: str, port: int) -> socket.socket:
    """Hold ``host:port`` for listeners that will share it with ``SO_REUSEPORT``.

    Returns a bound socket with ``SO_REUSEPORT`` that never listens (it receives no
    connections); keep it open as long as the port is served, and read the port from it when
    ``port`` was 0. Raises Unavailable when anything else holds the port, shared or not."""
    host = host.strip("[]")
    hint = (
        "choose another grpc_port (--grpc-port, CHAINPROOF_GRPC_PORT) or turn gRPC off "
        "(--no-grpc, CHAINPROOF_GRPC_ENABLED=false)"
    )
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        # Exclusive first: fails if any socket holds the port, whatever its options.
        probe.bind((host, port))
        port = probe.getsockname()[1]
    except OSError as exc:
        raise _refused("gRPC", host, port, exc, hint) from None
    finally:
        probe.close()
    holder = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise _refused("gRPC", host, port, exc, hint) from None
    return holder


def port_of(sock: socket.socket) -> int:
    """The port ``sock`` is bound to."""
    return int(sock.getsockname()[1])


def close_quietly(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed, say
            sock.close()
