"""Attestors in Binary Authorization's shape: who may vouch for an image, and with which keys.

An attestor names a Grafeas note (``userOwnedGrafeasNote.noteReference``) and lists the public
keys that may sign attestations for it. Several keys mean key rotation: an attestation verified
under any listed key counts. Keys are stored here as *data* — armoured PGP text or PKIX PEM with
its algorithm name; :meth:`AttestorPublicKey.load` (and :meth:`Attestor.load_keys` for all of
them) is the one place that data becomes a verifier of :mod:`chainproof.crypto`, for the judge,
the attestor resources and the command line alike.

Parsing follows the JSON that ``gcloud container binauthz attestors export`` and the REST API
use; every violation is reported with its path in one InvalidArgument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chainproof.attest.sigstore_bundle import KeylessIdentity
from chainproof.crypto.keys import KeySpec, PublicKey, load_public_key
from chainproof.domain.names import is_attestor_name, is_note_name
from chainproof.errors import ChainproofError, InvalidArgument
from chainproof.policy._fields import FieldReader, Problems


class SignatureAlgorithm(StrEnum):
    """The PKIX signature algorithms Binary Authorization accepts (both spellings it uses)."""

    RSA_PSS_2048_SHA256 = "RSA_PSS_2048_SHA256"
    RSA_SIGN_PSS_2048_SHA256 = "RSA_SIGN_PSS_2048_SHA256"
    RSA_PSS_3072_SHA256 = "RSA_PSS_3072_SHA256"
    RSA_SIGN_PSS_3072_SHA256 = "RSA_SIGN_PSS_3072_SHA256"
    RSA_PSS_4096_SHA256 = "RSA_PSS_4096_SHA256"
    RSA_SIGN_PSS_4096_SHA256 = "RSA_SIGN_PSS_4096_SHA256"
    RSA_PSS_4096_SHA512 = "RSA_PSS_4096_SHA512"
    RSA_SIGN_PSS_4096_SHA512 = "RSA_SIGN_PSS_4096_SHA512"
    RSA_SIGN_PKCS1_2048_SHA256 = "RSA_SIGN_PKCS1_2048_SHA256"
    RSA_SIGN_PKCS1_3072_SHA256 = "RSA_SIGN_PKCS1_3072_SHA256"
    RSA_SIGN_PKCS1_4096_SHA256 = "RSA_SIGN_PKCS1_4096_SHA256"
    RSA_SIGN_PKCS1_4096_SHA512 = "RSA_SIGN_PKCS1_4096_SHA512"
    ECDSA_P256_SHA256 = "ECDSA_P256_SHA256"
    EC_SIGN_P256_SHA256 = "EC_SIGN_P256_SHA256"
    ECDSA_P384_SHA384 = "ECDSA_P384_SHA384"
    EC_SIGN_P384_SHA384 = "EC_SIGN_P384_SHA384"
    ECDSA_P521_SHA512 = "ECDSA_P521_SHA512"
    EC_SIGN_P521_SHA512 = "EC_SIGN_P521_SHA512"
    # Not a Binary Authorization name: chainproof also verifies Ed25519 PKIX keys.
    ED25519 = "ED25519"
    EC_SIGN_ED25519 = "EC_SIGN_ED25519"


@dataclass(frozen=True, slots=True)
class PkixPublicKey:
    public_key_pem: str
    signature_algorithm: SignatureAlgorithm


@dataclass(frozen=True, slots=True)
class AttestorPublicKey:
    """One key. ``id`` may be empty for a PGP key: Binary Authorization then uses the key's
    OpenPGP fingerprint, which :mod:`chainproof.crypto` computes when it loads the key."""

    id: str
    comment: str = ""
    ascii_armored_pgp_public_key: str | None = None
    pkix_public_key: PkixPublicKey | None = None

    @property
    def key_type(self) -> str:
        return "PGP" if self.ascii_armored_pgp_public_key is not None else "PKIX"

    def key_spec(self) -> KeySpec | None:
        """How :mod:`chainproof.crypto` loads this key; None for an entry with no material."""
        if self.ascii_armored_pgp_public_key is not None:
            return KeySpec("PGP", self.ascii_armored_pgp_public_key, key_id=self.id or None)
        if self.pkix_public_key is not None:
            return KeySpec(
                "PKIX",
                self.pkix_public_key.public_key_pem,
                key_id=self.id,
                algorithm=self.pkix_public_key.signature_algorithm.value,
            )
        return None

    def load(self) -> PublicKey | None:
        """The verifying key (None without material); InvalidArgument when it is unusable."""
        spec = self.key_spec()
        return load_public_key(spec) if spec is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id:
            out["id"] = self.id
        if self.comment:
            out["comment"] = self.comment
        if self.ascii_armored_pgp_public_key is not None:
            out["asciiArmoredPgpPublicKey"] = self.ascii_armored_pgp_public_key
        if self.pkix_public_key is not None:
            out["pkixPublicKey"] = {
                "publicKeyPem": self.pkix_public_key.public_key_pem,
                "signatureAlgorithm": self.pkix_public_key.signature_algorithm.value,
            }
        return out


class EvidenceSource(StrEnum):
    """Where an attestor's evidence lives (a chainproof extension of the attestor document)."""

    SCRIBE = "SCRIBE"  # occurrences under the attestor's note (Binary Authorization's way)
    REGISTRY = "REGISTRY"  # cosign signatures, attestations and Sigstore bundles beside the image
    BOTH = "BOTH"

    @property
    def reads_registry(self) -> bool:
        return self is not EvidenceSource.SCRIBE

    @property
    def reads_scribe(self) -> bool:
        return self is not EvidenceSource.REGISTRY


@dataclass(frozen=True, slots=True)
class UnusableKey:
    """One of an attestor's keys that cannot verify anything, and why."""

    index: int
    key: AttestorPublicKey
    reason: str

    def describe(self) -> str:
        return f"key {self.key.id or '(no id)'} cannot be used: {self.reason}"


#: The key id a keyless verification is recorded under: it names the trusted identity.
KEYLESS_KEY_PREFIX = "keyless:"


@dataclass(frozen=True, slots=True)
class Attestor:
    name: str  # projects/p/attestors/id; empty until the API assigns it on create
    note_reference: str
    public_keys: tuple[AttestorPublicKey, ...] = ()
    description: str = ""
    delegation_service_account_email: str = ""
    evidence_source: EvidenceSource = EvidenceSource.SCRIBE
    keyless_identities: tuple[KeylessIdentity, ...] = ()
    #: For an image index: whether each per-platform manifest must carry evidence too.
    require_signed_children: bool = False

    def load_keys(self) -> tuple[list[PublicKey], list[UnusableKey]]:
        """Every verifying key, and each listed key that cannot be loaded with why."""
        loaded, unusable = self.loaded_keys()
        return [key for _, key in loaded if key is not None], unusable

    def loaded_keys(
        self,
    ) -> tuple[list[tuple[AttestorPublicKey, PublicKey | None]], list[UnusableKey]]:
        """Each listed key that loads, beside what it loaded to (None: no material), in order;
        and each that does not, with why."""
        loaded: list[tuple[AttestorPublicKey, PublicKey | None]] = []
        unusable: list[UnusableKey] = []
        for i, entry in enumerate(self.public_keys):
            try:
                loaded.append((entry, entry.load()))
            except ChainproofError as exc:
                unusable.append(UnusableKey(i, entry, exc.message))
        return loaded, unusable

    @property
    def key_ids(self) -> frozenset[str]:
        ids = {k.id for k in self.public_keys if k.id}
        ids.update(KEYLESS_KEY_PREFIX + i.describe() for i in self.keyless_identities)
        return frozenset(ids)

    def to_dict(self) -> dict[str, Any]:
        note: dict[str, Any] = {"noteReference": self.note_reference}
        if self.public_keys:
            note["publicKeys"] = [k.to_dict() for k in self.public_keys]
        if self.delegation_service_account_email:
            note["delegationServiceAccountEmail"] = self.delegation_service_account_email
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        out["userOwnedGrafeasNote"] = note
        if self.evidence_source is not EvidenceSource.SCRIBE:
            out["evidenceSource"] = self.evidence_source.value
        if self.keyless_identities:
            out["keylessIdentities"] = [i.to_dict() for i in self.keyless_identities]
        if self.require_signed_children:
            out["requireSignedChildren"] = True
        return out


def parse_attestor(data: Mapping[str, Any] | object) -> Attestor:
    """Parse one attestor document; raise InvalidArgument listing every problem with its path."""
    problems = Problems("attestor")
    attestor = read_attestor(problems, "", data)
    problems.raise_if_any()
    return attestor


def read_attestor(problems: Problems, path: str, data: object) -> Attestor:
    r = FieldReader(
        problems,
        path,
        data,
        (
            "name",
            "description",
            "userOwnedGrafeasNote",
            "updateTime",
            "etag",
            "evidenceSource",
            "keylessIdentities",
            "requireSignedChildren",
        ),
    )
    name = r.string("name")
    source = r.enum("evidenceSource", EvidenceSource, default=EvidenceSource.SCRIBE)
    identities: list[KeylessIdentity] = []
    for item_path, item in r.object_list("keylessIdentities"):
        try:
            identities.append(KeylessIdentity.from_dict(item if isinstance(item, Mapping) else {}))
        except InvalidArgument as exc:
            problems.add(item_path, exc.message)
    children = r.boolean("requireSignedChildren", default=False)
    if name and not is_attestor_name(name):
        problems.add(r.at("name"), f"{name!r} is not of the form projects/PROJECT/attestors/ID")
    description = r.string("description")
    if not r.has("userOwnedGrafeasNote"):
        if r.ok:
            problems.add(r.at("userOwnedGrafeasNote"), "is required")
        return Attestor(name=name, note_reference="", description=description)
    n = FieldReader(
        problems,
        r.at("userOwnedGrafeasNote"),
        r.raw("userOwnedGrafeasNote"),
        ("noteReference", "publicKeys", "delegationServiceAccountEmail"),
    )
    note = n.string("noteReference", required=True)
    if note and not is_note_name(note):
        problems.add(
            n.at("noteReference"), f"{note!r} is not of the form projects/PROJECT/notes/ID"
        )
    keys = tuple(_read_key(problems, p, item) for p, item in n.object_list("publicKeys"))
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key.id and key.id in seen:
            problems.add(f"{n.at('publicKeys')}[{i}].id", f"duplicate key id {key.id!r}")
        seen.add(key.id)
    return Attestor(
        name=name,
        note_reference=note,
        public_keys=keys,
        description=description,
        delegation_service_account_email=n.string("delegationServiceAccountEmail"),
        evidence_source=source,
        keyless_identities=tuple(identities),
        require_signed_children=children,
    )


def read_pkix_key(problems: Problems, path: str, data: object) -> PkixPublicKey:
    """A ``pkixPublicKey{publicKeyPem, signatureAlgorithm}`` block (both vocabularies use it)."""
    p = FieldReader(problems, path, data, ("publicKeyPem", "signatureAlgorithm"))
    pem = p.string("publicKeyPem", required=True)
    alg = p.enum(
        "signatureAlgorithm",
        SignatureAlgorithm,
        required=True,
        default=SignatureAlgorithm.ECDSA_P256_SHA256,
    )
    return PkixPublicKey(pem, alg)


def _read_key(problems: Problems, path: str, data: object) -> AttestorPublicKey:
    r = FieldReader(
        problems, path, data, ("id", "comment", "asciiArmoredPgpPublicKey", "pkixPublicKey")
    )
    key_id = r.string("id")
    comment = r.string("comment")
    pgp = r.string("asciiArmoredPgpPublicKey") if r.has("asciiArmoredPgpPublicKey") else None
    pkix: PkixPublicKey | None = None
    if r.has("pkixPublicKey"):
        pkix = read_pkix_key(problems, r.at("pkixPublicKey"), r.raw("pkixPublicKey"))
        if not key_id and r.ok:
            problems.add(r.at("id"), "is required for a PKIX key (for example a URI naming it)")
    if r.ok and (pgp is None) == (pkix is None):
        problems.add(path, "expected exactly one of asciiArmoredPgpPublicKey or pkixPublicKey")
    return AttestorPublicKey(key_id, comment, pgp, pkix)
