"""Sigstore bundles (v0.1–v0.3): keyless verification offline, and key-based DSSE content.

This module owns:

* :class:`KeylessIdentity`, a certificate identity as policy-controller and Kyverno spell it —
  an OIDC ``issuer`` and a ``subject`` (the certificate's SAN), each exact or a regular
  expression (``issuerRegExp`` / ``subjectRegExp``, matched against the whole value);
* :func:`load_trusted_root`, the Sigstore trusted root (Fulcio CAs, CT logs, Rekor keys) from
  its JSON, parsed once;
* :func:`verify_keyless_bundle`: the bundle's certificate chain to Fulcio, its SCT, its Rekor
  inclusion proof (or promise) and its signature are checked by ``sigstore-python``'s
  :class:`~sigstore.verify.Verifier` against the configured trusted root, entirely offline;
  chainproof only supplies the identity policy and then binds the signed content to the image
  digest *from the request*: a DSSE bundle's in-toto statement must name the image, a
  message-signature bundle must sign exactly that manifest digest;
* :func:`bundle_envelope`: the DSSE envelope of a bundle whose signer is a plain key (cosign's
  ``--key`` with the new bundle format), for :func:`~chainproof.attest.verify.verify_attestation`.

Certificate path building and transparency-log proofs are never written here: they are
``sigstore-python``'s job. Reading the two identity fields out of a verified leaf is ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.x509 import (
    Certificate,
    ObjectIdentifier,
    OtherName,
    RFC822Name,
    SubjectAlternativeName,
    UniformResourceIdentifier,
)
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.common.v1 import HashAlgorithm
from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootMessage

from chainproof.attest.intoto import INTOTO_PAYLOAD_TYPE, Statement, parse_statement
from chainproof.crypto.dsse import DsseEnvelope
from chainproof.domain.images import ImageReference
from chainproof.errors import InvalidArgument

__all__ = [
    "BUNDLE_MEDIA_TYPES",
    "BundleVerification",
    "KeylessIdentity",
    "bundle_envelope",
    "bundle_media_type",
    "load_trusted_root",
    "verify_keyless_bundle",
]

BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)
_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw bytes
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
_SAN_OTHERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


@dataclass(frozen=True, slots=True)
class KeylessIdentity:
    """Who may have signed: exact values or regular expressions (full match) for both parts."""

    issuer: str | None = None
    subject: str | None = None
    issuer_regex: str | None = None
    subject_regex: str | None = None
    _compiled: tuple[re.Pattern[str] | None, re.Pattern[str] | None] = field(
        default=(None, None), compare=False, repr=False
    )

    def __post_init__(self) -> None:
        # An identity with no issuer, or no subject, would let any Fulcio certificate through:
        # refuse it here, as policy-controller does.
        if (self.issuer is None) == (self.issuer_regex is None):
            raise InvalidArgument("a keyless identity needs exactly one of issuer or issuerRegExp")
        if (self.subject is None) == (self.subject_regex is None):
            raise InvalidArgument(
                "a keyless identity needs exactly one of subject or subjectRegExp"
            )
        compiled: list[re.Pattern[str] | None] = []
        for what, pattern in (
            ("issuerRegExp", self.issuer_regex),
            ("subjectRegExp", self.subject_regex),
        ):
            if pattern is None:
                compiled.append(None)
                continue
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise InvalidArgument(
                    f"{what} {pattern!r} is not a regular expression: {exc}"
                ) from exc
        object.__setattr__(self, "_compiled", (compiled[0], compiled[1]))

    def matches(self, issuer: str | None, subjects: Sequence[str]) -> bool:
        if issuer is None:
            return False
        issuer_re, subject_re = self._compiled
        if issuer_re is not None:
            if not issuer_re.fullmatch(issuer):
                return False
        elif issuer != self.issuer:
            return False
        if subject_re is not None:
            return any(subject_re.fullmatch(s) for s in subjects)
        return self.subject in subjects

    def describe(self) -> str:
        issuer = self.issuer if self.issuer is not None else f"/{self.issuer_regex}/"
        subject = self.subject if self.subject is not None else f"/{self.subject_regex}/"
        return f"{subject} (issuer {issuer})"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KeylessIdentity:
        """From ``{"issuer"|"issuerRegExp": …, "subject"|"subjectRegExp": …}``."""

        def text(key: str) -> str | None:
            value = raw.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgument(f"keyless identity {key} must be a non-empty string")
            return value

        return cls(
            issuer=text("issuer"),
            subject=text("subject"),
            issuer_regex=text("issuerRegExp"),
            subject_regex=text("subjectRegExp"),
        )

    def to_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in (
            ("issuer", self.issuer),
            ("issuerRegExp", self.issuer_regex),
            ("subject", self.subject),
            ("subjectRegExp", self.subject_regex),
        ):
            if value is not None:
                out[key] = value
        return out


def load_trusted_root(data: bytes) -> TrustedRoot:
    """The trusted root from its JSON (``application/vnd.dev.sigstore.trustedroot+json``)."""
    try:
        return TrustedRoot(TrustedRootMessage.from_json(data))
    except (SigstoreError, ValueError, TypeError) as exc:
        raise InvalidArgument(f"the Sigstore trusted root is not valid: {exc}") from exc


def bundle_media_type(data: bytes) -> str | None:
    """The bundle's ``mediaType`` when ``data`` is a JSON object carrying one."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    value = doc.get("mediaType") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def bundle_envelope(data: bytes) -> DsseEnvelope:
    """The DSSE envelope of a bundle (for key-based verification by chainproof's crypto)."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"Sigstore bundle is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("mediaType") not in BUNDLE_MEDIA_TYPES:
        raise InvalidArgument(
            "not a Sigstore bundle: expected a JSON object with mediaType one of "
            + ", ".join(sorted(BUNDLE_MEDIA_TYPES))
        )
    envelope = doc.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        raise InvalidArgument(
            "the Sigstore bundle carries no dsseEnvelope: key-based bundles are read as DSSE "
            "(message-signature bundles need a keyless attestor)"
        )
    return DsseEnvelope.from_json(envelope)


def _issuer(cert: Certificate) -> str | None:
    for ext in cert.extensions:
        if ext.oid == _ISSUER_V2:
            raw: bytes = ext.value.value
            # DER UTF8String: tag 0x0C, then a short or long length.
            if len(raw) < 2 or raw[0] != 0x0C:
                return None
            length, offset = raw[1], 2
            if length & 0x80:
                count = length & 0x7F
                length = int.from_bytes(raw[2 : 2 + count], "big")
                offset = 2 + count
            return raw[offset : offset + length].decode("utf-8", "replace")
    for ext in cert.extensions:
        if ext.oid == _ISSUER_V1:
            legacy: bytes = ext.value.value
            return legacy.decode("utf-8", "replace")
    return None


def _subjects(cert: Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except Exception:  # no SAN at all: no identity
        return []
    out: list[str] = list(san.get_values_for_type(RFC822Name))
    out.extend(san.get_values_for_type(UniformResourceIdentifier))
    out.extend(
        o.value.decode("utf-8", "replace")
        for o in san.get_values_for_type(OtherName)
        if o.type_id == _SAN_OTHERNAME
    )
    return out


class _IdentityPolicy:
    """A sigstore VerificationPolicy: the leaf must match one of the trusted identities."""

    def __init__(self, identities: Sequence[KeylessIdentity]) -> None:
        self._identities = identities
        self.matched: KeylessIdentity | None = None
        self.seen: tuple[str | None, tuple[str, ...]] = (None, ())

    def verify(self, cert: Certificate) -> None:
        issuer, subjects = _issuer(cert), _subjects(cert)
        self.seen = (issuer, tuple(subjects))
        for identity in self._identities:
            if identity.matches(issuer, subjects):
                self.matched = identity
                return
        raise VerificationError(
            f"certificate identity {', '.join(subjects) or '(none)'} from issuer "
            f"{issuer or '(none)'} is not a trusted identity"
        )


@dataclass(frozen=True, slots=True)
class BundleVerification:
    """The outcome for one bundle about one image.

    ``signer`` is the identity the certificate carried (``subject (issuer …)``) when the chain
    verified; ``identity_mismatch`` says a valid Sigstore signature came from someone not
    trusted; ``statement`` is the in-toto statement of a DSSE bundle.
    """

    image: str
    verified: bool
    signer: str = ""
    payload_type: str = ""
    statement: Statement | None = None
    identity_mismatch: bool = False
    reasons: tuple[str, ...] = ()
    identity: KeylessIdentity | None = None  # the trusted identity that matched


def verify_keyless_bundle(
    data: bytes,
    image: ImageReference,
    *,
    trusted_root: TrustedRoot,
    identities: Sequence[KeylessIdentity],
    artifact_digest: str | None = None,
) -> BundleVerification:
    """Verify a keyless bundle offline for ``image`` (whose digest comes from the request).

    ``artifact_digest`` is what a message-signature bundle must sign: by default the image's
    manifest digest; tests pass a file's digest to check real artifact bundles. Empty
    ``identities`` refuse everything (an empty requirement never admits).
    """
    if image.digest is None:
        raise InvalidArgument(f"image {image} has no digest to verify a bundle against")
    if not identities:
        return BundleVerification(
            image.canonical, False, reasons=("no keyless identity is trusted for this attestor",)
        )
    try:
        bundle = Bundle.from_json(data)
    except (SigstoreError, ValueError, TypeError, KeyError) as exc:
        return BundleVerification(
            image.canonical, False, reasons=(f"the Sigstore bundle is not valid: {exc}",)
        )
    policy = _IdentityPolicy(identities)
    verifier = Verifier(trusted_root=trusted_root)
    statement: Statement | None = None
    payload_type = ""
    try:
        if bundle._dsse_envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle, policy)
        else:
            wanted = (artifact_digest or image.digest).removeprefix("sha256:")
            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(wanted))
            verifier.verify_artifact(hashed, bundle, policy)
            payload = b""
    except SigstoreError as exc:
        mismatch = policy.matched is None and policy.seen != (None, ())
        return BundleVerification(
            image.canonical,
            False,
            identity_mismatch=mismatch and "not a trusted identity" in str(exc),
            reasons=(f"Sigstore verification failed: {exc}",),
        )
    assert policy.matched is not None  # the policy ran and accepted
    issuer, subjects = policy.seen
    signer = f"{', '.join(subjects)} (issuer {issuer})"
    if bundle._dsse_envelope is None:
        return BundleVerification(image.canonical, True, signer=signer, identity=policy.matched)
    if payload_type != INTOTO_PAYLOAD_TYPE:
        return BundleVerification(
            image.canonical,
            False,
            signer=signer,
            payload_type=payload_type,
            reasons=(f"DSSE payloadType {payload_type!r} is not {INTOTO_PAYLOAD_TYPE!r}",),
        )
    try:
        statement = parse_statement(payload)
    except InvalidArgument as exc:
        return BundleVerification(
            image.canonical, False, signer=signer, payload_type=payload_type, reasons=(exc.message,)
        )
    reasons = statement.mismatches(image)
    return BundleVerification(
        image.canonical,
        not reasons,
        signer=signer,
        payload_type=payload_type,
        statement=statement,
        reasons=reasons,
        identity=policy.matched,
    )
