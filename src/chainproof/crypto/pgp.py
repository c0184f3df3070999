"""OpenPGP public keys: verifying what GnuPG produces, without running GnuPG.

This module owns :class:`PgpPublicKey`, registered as key type ``PGP``. It reads one
ASCII-armored (or binary) certificate with pysequoia and verifies, exactly as ``gpg`` makes
them:

* clearsigned messages (``gpg --clearsign``) and inline-signed messages (``gpg --sign``,
  armored or binary): the content is recovered from the message and returned;
* detached signatures (``gpg --detach-sign``, armored or binary) over data the caller passes.

Key ID = the primary key fingerprint in upper-case hex, as Binary Authorization writes it.
Fingerprints and long (16 hex digit) key IDs of the primary key or of any subkey are accepted
as hints. Revocation and expiry are judged against the ``now`` the caller passes: a revoked key
(or signing subkey) never verifies; neither does one that has expired by ``now``, nor a
signature made after ``now`` (beyond a small clock skew) or expired by then. Sequoia applies
its own standard policy as well (it refuses, for example, SHA-1 signatures and keys that were
not alive when they signed).

It does not own signing (:mod:`chainproof.crypto.gpg_signer`) nor the meaning of the content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pysequoia
from pysequoia.packet import PacketPile, Tag

from chainproof.crypto.keys import KeySpec, PublicKey, SignatureCheck, register_key_type
from chainproof.domain.timestamps import CLOCK_SKEW, rfc3339
from chainproof.errors import InvalidArgument

__all__ = ["PgpPublicKey", "normalize_pgp_id"]


_CLEARSIGN_HEADER = b"-----BEGIN PGP SIGNED MESSAGE-----"
_MESSAGE_TAGS = (Tag.Literal, Tag.OnePassSig, Tag.CompressedData)


def normalize_pgp_id(text: str) -> str:
    """Upper-case hex without spaces or a ``0x`` prefix, the form fingerprints are compared in."""
    cleaned = "".join(text.split()).upper()
    return cleaned[2:] if cleaned.startswith("0X") else cleaned


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(slots=True)
class _Component:
    """The primary key or one subkey, with what decides whether it may sign at a given time."""

    fingerprint: str
    created: datetime | None
    expires: datetime | None = None
    revoked: bool = False
    primary: bool = False
    _binding_time: datetime | None = field(default=None, repr=False)

    @property
    def long_id(self) -> str:
        return self.fingerprint[-16:]

    @property
    def label(self) -> str:
        return "key" if self.primary else "signing subkey"


def _read_components(cert: pysequoia.Cert) -> dict[str, _Component]:
    """Index the certificate's keys by fingerprint, with subkey expiry and revocation.

    The primary key's expiry and revocation come from Sequoia (``Cert.expiration``,
    ``Cert.is_revoked``); a subkey's come from its newest binding signature and any subkey
    revocation signature that follows it.
    """
    components: dict[str, _Component] = {}
    current: _Component | None = None
    for packet in PacketPile.from_bytes(bytes(cert)):
        tag = packet.tag
        if tag in (Tag.PublicKey, Tag.PublicSubkey):
            fpr = normalize_pgp_id(packet.fingerprint or "")
            current = _Component(fpr, packet.key_created, primary=tag == Tag.PublicKey)
            if current.primary:
                current.expires = cert.expiration
                current.revoked = cert.is_revoked
            components[fpr] = current
        elif tag == Tag.Signature and current is not None and not current.primary:
            kind = packet.signature_type
            if kind == pysequoia.packet.SignatureType.SubkeyRevocation:
                current.revoked = True
            elif kind == pysequoia.packet.SignatureType.SubkeyBinding:
                made = packet.signature_created
                if current._binding_time is None or (made and made >= current._binding_time):
                    current._binding_time = made
                    validity = packet.key_validity_period
                    current.expires = (
                        current.created + validity if validity and current.created else None
                    )
    return components


@dataclass(frozen=True, slots=True)
class _SignaturePacket:
    issuer: str | None
    created: datetime | None
    expires: datetime | None


def _inspect(signature: bytes) -> tuple[bool, list[_SignaturePacket]]:
    """Whether ``signature`` is a message carrying its content, and its signature packets."""
    clearsigned = signature.lstrip().startswith(_CLEARSIGN_HEADER)
    attached = clearsigned
    packets: list[_SignaturePacket] = []
    for packet in PacketPile.from_bytes(signature):
        if packet.tag in _MESSAGE_TAGS:
            attached = True
        elif packet.tag == Tag.Signature:
            issuer = packet.issuer_fingerprint or packet.issuer_key_id
            packets.append(
                _SignaturePacket(
                    issuer=normalize_pgp_id(issuer) if issuer else None,
                    created=packet.signature_created,
                    expires=packet.signature_expiration_time,
                )
            )
    return attached, packets


def _same_content(content: bytes, data: bytes, signature: bytes) -> bool:
    """Whether the serialized payload stored beside a message agrees with what it carries.

    GnuPG's clearsigned text drops the final line ending, and older walkthroughs store the
    whole inline-signed message as the payload; both are the same statement.
    """
    if content == data or content.rstrip(b"\r\n") == data.rstrip(b"\r\n"):
        return True
    return data.strip() == signature.strip()


class PgpPublicKey(PublicKey):
    """One OpenPGP certificate (primary key and subkeys) trusted to sign."""

    key_type = "PGP"

    def __init__(self, cert: pysequoia.Cert) -> None:
        self._cert = cert
        self._components = _read_components(cert)
        self._key_id = normalize_pgp_id(cert.fingerprint)
        self._hints = {c.fingerprint for c in self._components.values()} | {
            c.long_id for c in self._components.values()
        }

    @classmethod
    def from_armored(cls, material: str | bytes) -> PgpPublicKey:
        """Load one certificate from ASCII armor (or binary); raise InvalidArgument otherwise."""
        raw = material.encode() if isinstance(material, str) else material
        try:
            certs = pysequoia.Cert.split_bytes(raw)
        except (ValueError, RuntimeError) as exc:
            raise InvalidArgument(
                f"not an OpenPGP public key: {_first_line(exc)}; expected the output of "
                "gpg --armor --export KEYID"
            ) from exc
        if any(p.tag in (Tag.SecretKey, Tag.SecretSubkey) for p in PacketPile.from_bytes(raw)):
            raise InvalidArgument(
                "this OpenPGP key holds secret key material: configure the public key only "
                "(gpg --armor --export KEYID)"
            )
        if len(certs) != 1:
            raise InvalidArgument(
                f"expected exactly one OpenPGP public key, found {len(certs)}: configure one "
                "key per entry"
            )
        return cls(certs[0])

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """The primary key fingerprint first, then those of the subkeys."""
        return tuple(self._components)

    @property
    def expires(self) -> datetime | None:
        return self._cert.expiration

    @property
    def revoked(self) -> bool:
        return self._cert.is_revoked

    def matches_hint(self, hint: str) -> bool:
        return normalize_pgp_id(hint) in self._hints

    def _knows(self, issuer: str) -> bool:
        return issuer in self._hints

    def _verify(self, signature: bytes, data: bytes | None, now: datetime) -> SignatureCheck:
        try:
            attached, packets = _inspect(signature)
        except (ValueError, RuntimeError) as exc:
            return SignatureCheck.failed(
                self.key_id, f"the OpenPGP signature is malformed or truncated: {_first_line(exc)}"
            )
        if not packets:
            return SignatureCheck.failed(
                self.key_id, "the OpenPGP data holds no signature packet (truncated armor?)"
            )
        issuers = [p.issuer for p in packets if p.issuer]
        if issuers and not any(self._knows(i) for i in issuers):
            return SignatureCheck.failed(
                self.key_id, f"signed by unknown key {', '.join(issuers)}, not by {self.key_id}"
            )
        if self._cert.is_revoked:
            return SignatureCheck.failed(self.key_id, f"key {self.key_id} is revoked")
        if not attached and data is None:
            return SignatureCheck.failed(
                self.key_id, "this is a detached signature, but no signed data was given"
            )

        cert = self._cert
        try:
            if attached:
                result = pysequoia.verify(bytes=signature, store=lambda _ids: [cert])
            else:
                assert data is not None
                sig = pysequoia.Sig.from_bytes(signature)
                result = pysequoia.verify(bytes=data, store=lambda _ids: [cert], signature=sig)
        except (ValueError, RuntimeError) as exc:
            message = _first_line(exc)
            if "no valid signatures" in message.lower():
                return SignatureCheck.failed(
                    self.key_id,
                    f"the signature does not verify with key {self.key_id}: the signed content "
                    "was altered, or the signature was not made by this key",
                )
            return SignatureCheck.failed(
                self.key_id, f"the OpenPGP signature is malformed or truncated: {message}"
            )
        if not result.valid_sigs:
            return SignatureCheck.failed(self.key_id, f"no signature verifies with {self.key_id}")

        signer = normalize_pgp_id(result.valid_sigs[0].signing_key)
        component = self._components.get(signer)
        packet = next(
            (p for p in packets if p.issuer in (signer, signer[-16:])),
            packets[0],
        )
        problem = self._time_problem(component, packet, now)
        if problem:
            return SignatureCheck.failed(self.key_id, problem)

        content = result.bytes if attached else data
        if (
            attached
            and data
            and content is not None
            and not _same_content(content, data, signature)
        ):
            return SignatureCheck.failed(
                self.key_id,
                "the serialized payload stored beside the signature differs from the content "
                "the signed message carries",
            )
        return SignatureCheck(
            key_id=self.key_id,
            verified=True,
            signed_content=content,
            signer=signer if signer != self.key_id else None,
        )

    def _time_problem(
        self, component: _Component | None, packet: _SignaturePacket, now: datetime
    ) -> str | None:
        primary = self._components[self.key_id]
        if primary.expires is not None and primary.expires <= now:
            return (
                f"key {self.key_id} expired at {rfc3339(primary.expires)} (now is {rfc3339(now)})"
            )
        if component is not None and not component.primary:
            if component.revoked:
                return f"signing subkey {component.fingerprint} of key {self.key_id} is revoked"
            if component.expires is not None and component.expires <= now:
                return (
                    f"signing subkey {component.fingerprint} of key {self.key_id} expired at "
                    f"{rfc3339(component.expires)} (now is {rfc3339(now)})"
                )
        if packet.created is not None and packet.created > now + CLOCK_SKEW:
            return (
                f"the signature was made at {rfc3339(packet.created)}, after the verification "
                f"time {rfc3339(now)}"
            )
        if packet.expires is not None and packet.expires <= now:
            return f"the signature expired at {rfc3339(packet.expires)} (now is {rfc3339(now)})"
        return None


@register_key_type("PGP")
def _load_pgp(spec: KeySpec) -> PublicKey:
    key = PgpPublicKey.from_armored(spec.material)
    if spec.key_id and not key.matches_hint(spec.key_id):
        raise InvalidArgument(
            f"PGP key id {spec.key_id!r} does not name this key: its fingerprint is {key.key_id}"
        )
    return key
