"""A loopback TCP proxy that a test can cut and restore: a database outage on demand.

Owns nothing but the sockets it opens. While cut, it closes every connection it carries and
every new one at once (the client sees a reset, as when a database host goes away); restored,
it forwards again. It counts refused connections, so a test can wait until the client has
tried for as long as it wants to prove, without asserting on time. A ``tap``, when given, is
made once per carried connection and sees every chunk the client sends through it (a test
counts the client's PostgreSQL messages with it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

#: Made once per carried connection; called with each chunk the client sends.
Tap = Callable[[], Callable[[bytes], None]]


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int, *, tap: Tap | None = None) -> None:
        self.target = (target_host, target_port)
        self._tap = tap
        self.port = 0
        self.cut = False
        #: Connections closed on arrival while cut.
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def sever(self) -> None:
        """Cut: drop every carried connection now, and every new one."""
        self.cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.cut = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            seen = self._tap() if self._tap is not None else None
            await asyncio.gather(
                self._pipe(reader, up_writer, seen), self._pipe(up_reader, writer, None)
            )
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        seen: Callable[[bytes], None] | None,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if self.cut:
                    return
                if seen is not None:
                    seen(data)
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
