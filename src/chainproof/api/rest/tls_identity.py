"""The client certificate of a mutual-TLS connection, handed to the app as ASGI wants it.

uvicorn verifies client certificates (``ssl_cert_reqs``) but does not pass them to the
application. This protocol class adds the ASGI TLS extension to every request's scope
(``scope["extensions"]["tls"]["client_cert_chain"]``, PEM), read once per connection, so
that :mod:`chainproof.api.rest.auth` can name the caller ``spiffe://…`` or ``cert:NAME``.
Only the peer certificate is passed: the chain was verified by the TLS layer already.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TlsIdentityProtocol(HttpToolsProtocol):
    _client_pem: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object: Any = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self._client_pem = ssl.DER_cert_to_PEM_cert(der) if der else None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._client_pem is not None:
            scope: Any = self.scope
            scope.setdefault("extensions", {})["tls"] = {"client_cert_chain": [self._client_pem]}
