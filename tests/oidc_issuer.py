"""A real OIDC issuer on loopback for tests: its own signing keys, served over HTTPS with a
discovery document and a JWKS, and a way to mint tokens (good and deliberately bad ones).

It also runs the authorization-code flow with PKCE: ``/authorize`` signs in whoever
``login_claims`` describe at once (no login form: the test is the user) and redirects back
with a one-time code; ``/token`` exchanges that code for an ID token only with the right
client, redirect URI and code verifier (S256), as a real issuer must.

It is a small HTTP server (the standard library's) rather than a fake of our code: chainproof
fetches its documents over a real TLS connection exactly as it would from Dex or Keycloak.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def _san(host: str) -> x509.GeneralName:
    import ipaddress

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_ca_and_server_cert(d: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA and a server certificate (SAN IP:host, or DNS:host for a name) signed by it:
    (ca, cert, key) paths."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([_san(host)]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (d / "ca.pem", d / "server.pem", d / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class LoopbackIssuer:
    url: str
    ca_file: Path
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    requests: list[str] = field(default_factory=list)
    #: The issuer named in the discovery document (tests may lie with it).
    discovery_issuer: str | None = None
    #: Who /authorize signs in; None makes it answer error=access_denied.
    login_claims: dict[str, Any] | None = field(
        default_factory=lambda: {"email": "alice@example.com", "email_verified": True}
    )
    #: Issued codes: code -> what it was issued for.
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Tests may make the issuer misbehave: an ID token with this nonce instead of the asked.
    forced_nonce: str | None = None

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect back to the client for an /authorize request."""
        redirect = query.get("redirect_uri", "")
        if self.login_claims is None:
            answer = {"error": "access_denied", "state": query.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = dict(query)
            answer = {"code": code, "state": query.get("state", "")}
        sep = "&" if urlsplit(redirect).query else "?"
        return f"{redirect}{sep}{urlencode(answer)}"

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        asked = self.codes.pop(form.get("code", ""), None)  # a code works once
        if asked is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if form.get("client_id") != asked.get("client_id") or form.get("redirect_uri") != asked.get(
            "redirect_uri"
        ):
            return 400, {"error": "invalid_grant"}
        challenge = (
            base64.urlsafe_b64encode(
                hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            )
            .rstrip(b"=")
            .decode()
        )
        if asked.get("code_challenge_method") != "S256" or challenge != asked.get("code_challenge"):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        token = self.token(
            aud=asked["client_id"],
            nonce=self.forced_nonce or asked.get("nonce"),
            **(self.login_claims or {}),
        )
        return 200, {"id_token": token, "access_token": "opaque", "token_type": "Bearer"}

    def add_key(self, kid: str, kind: str = "rsa") -> None:
        self.keys[kid] = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            algo: Any = (
                jwt.algorithms.RSAAlgorithm
                if isinstance(key, rsa.RSAPrivateKey)
                else jwt.algorithms.ECAlgorithm
            )
            jwk = json.loads(algo.to_jwk(key.public_key()))
            jwk.update(kid=kid, use="sig")
            out.append(jwk)
        return {"keys": out}

    def public_pem(self, kid: str) -> bytes:
        return bytes(
            self.keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def token(
        self,
        kid: str = "k1",
        *,
        now: dt.datetime | None = None,
        lifetime: dt.timedelta = dt.timedelta(minutes=10),
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = now or dt.datetime.now(dt.UTC)
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": "chainproof",
            "sub": "user-1",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        key = self.keys[kid]
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid, **(headers or {})})


@contextmanager
def running_issuer(tmp: Path) -> Iterator[LoopbackIssuer]:
    ca, cert, key = make_ca_and_server_cert(tmp)
    state: dict[str, LoopbackIssuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            issuer = state["issuer"]
            issuer.requests.append("POST " + self.path)
            if self.path != "/token":
                self._answer(404, {"error": "not found"})
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {k: v[-1] for k, v in parse_qs(raw).items()}
            self._answer(*issuer.exchange(form))

        def do_GET(self) -> None:
            issuer = state["issuer"]
            issuer.requests.append(self.path)
            path, _, query = self.path.partition("?")
            if path == "/authorize":
                self.send_response(302)
                self.send_header(
                    "Location",
                    issuer.authorize({k: v[-1] for k, v in parse_qs(query).items()}),
                )
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/.well-known/openid-configuration":
                body: Any = {
                    "issuer": issuer.discovery_issuer or issuer.url,
                    "jwks_uri": issuer.url + "/keys",
                    "authorization_endpoint": issuer.url + "/authorize",
                    "token_endpoint": issuer.url + "/token",
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                }
            elif self.path == "/keys":
                body = issuer.jwks()
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    issuer = LoopbackIssuer(url=f"https://127.0.0.1:{server.server_address[1]}", ca_file=ca)
    issuer.add_key("k1")
    state["issuer"] = issuer
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
