"""What the judge knows about each image when it decides: plain, frozen, already verified.

The service layer fills these records *after* it has fetched occurrences from the store and
verified every signature through :mod:`chainproof.crypto` and :mod:`chainproof.attest`, checking
each payload against the digest taken from the admission request (never from the attestation).
The evaluator trusts what it is given here and does no verification, I/O or clock reads of
its own; it only decides whether the evidence satisfies a policy, and explains why not.

Attestations that failed verification are passed in too, with their reasons, so that a denial
can say what was found and why it did not count ("2 found, 1 for another digest, 1 signed by
unknown key 7F3A…") instead of a bare "no attestation".

Evidence is keyed by the canonical reference ``registry/repository@sha256:…`` of
:mod:`chainproof.domain.images`; :meth:`Evidence.for_image` does the normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.ingest.model import VexScope
from chainproof.ingest.vex import purl_is_package, scope_applies
from chainproof.policy.attestors import Attestor


class AttestationKind(StrEnum):
    """How an attestation was carried and signed."""

    SIMPLE_SIGNING = "simple-signing"  # Red Hat/Atomic simple signing payload (gcloud, gpg)
    PGP_SIGNED = "pgp-signed"  # Grafeas' legacy pgpSignedAttestation (a detached PGP signature)
    IN_TOTO = "in-toto"  # DSSE envelope around an in-toto Statement


class FailureReason(StrEnum):
    """Why the service refused to count an attestation (see :data:`FAILURE_LABELS`)."""

    WRONG_DIGEST = "wrong-digest"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    MALFORMED = "malformed"
    UNSUPPORTED = "unsupported"


FAILURE_LABELS: Mapping[FailureReason, str] = MappingProxyType(
    {
        FailureReason.WRONG_DIGEST: "for another digest",
        FailureReason.UNKNOWN_KEY: "signed by unknown key",
        FailureReason.BAD_SIGNATURE: "with a signature that does not verify",
        FailureReason.MALFORMED: "with an unreadable payload",
        FailureReason.UNSUPPORTED: "in an unsupported format",
    }
)


class Severity(IntEnum):
    """Grafeas' vulnerability severities, ordered so that comparisons read naturally."""

    SEVERITY_UNSPECIFIED = 0
    MINIMAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def from_name(cls, name: str) -> Severity:
        try:
            return cls[name.upper()]
        except KeyError:
            return cls.SEVERITY_UNSPECIFIED


class VexStatus(StrEnum):
    """OpenVEX statuses (Grafeas VULNERABILITY_ASSESSMENT states map onto these)."""

    NOT_AFFECTED = "not_affected"
    FIXED = "fixed"
    AFFECTED = "affected"
    UNDER_INVESTIGATION = "under_investigation"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    """An attestation whose signature verified under ``key_id`` of ``attestor`` and whose
    payload names the trusted digest of the image it is filed under."""

    attestor: str  # projects/p/attestors/a (or a Kritis AttestationAuthority name)
    key_id: str
    occurrence: str  # projects/p/occurrences/id
    kind: AttestationKind
    predicate_type: str | None = None
    statement: Mapping[str, Any] | None = None  # the whole parsed payload
    predicate: Mapping[str, Any] | None = None
    created: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "statement", _frozen_mapping(self.statement))
        object.__setattr__(self, "predicate", _frozen_mapping(self.predicate))


@dataclass(frozen=True, slots=True)
class FailedAttestation:
    """An attestation the service found but could not count, and why."""

    occurrence: str
    reason: FailureReason
    attestor: str | None = None  # the attestor whose note it was filed under, when known
    key_id: str | None = None
    detail: str = ""  # e.g. the digest it named, or the verifier's message


# ``attestor`` on a fact below names who signed it: the attestor whose verified attestation
# carried it, or None for an unsigned Grafeas occurrence of the evidence projects. A rule
# counts only facts signed by attestors it names, and unsigned facts (see ImageEvidence).


@dataclass(frozen=True, slots=True)
class VulnerabilityFinding:
    cve: str  # CVE-2024-1234 (a providers/…/notes/CVE-… name is reduced to its last segment)
    severity: Severity
    fix_available: bool
    package: str | None = None
    occurrence: str | None = None
    attestor: str | None = None
    #: Other ids of the same vulnerability (an OSV GHSA/GO record's CVE), so that VEX and
    #: policy lists written in CVE ids apply to findings filed under another id.
    aliases: tuple[str, ...] = ()
    purl: str | None = None  # the affected package's canonical purl, when the scanner gave one


def _cve_key(text: str) -> str:
    return text.strip().rsplit("/", 1)[-1].upper()


@dataclass(frozen=True, slots=True)
class VexStatement:
    """A VEX statement about one image's vulnerability, and what it speaks for.

    - ``finding`` set: the assessment attached to that one VULNERABILITY occurrence; it
      resolves that finding only, never the same CVE in another package.
    - ``scopes`` set: the products (and subcomponents) a VEX document names; it resolves a
      finding only where a scope applies (:func:`chainproof.ingest.vex.scope_applies`). An
      empty tuple (products named, none identifiable) resolves nothing.
    - neither: a statement about the image as a whole (a verified attestation whose subject is
      this image and which names no products).
    """

    cve: str
    status: VexStatus
    source: str  # the occurrence or document that said so
    justification: str = ""
    attestor: str | None = None
    finding: str | None = None
    package: str | None = None  # the package of ``finding``
    scopes: tuple[VexScope, ...] | None = None

    def resolves(self, finding: VulnerabilityFinding, image: ImageReference) -> bool:
        """Whether this statement speaks for ``finding`` on ``image`` (status aside)."""
        ids = {_cve_key(finding.cve), *(_cve_key(a) for a in finding.aliases)}
        if _cve_key(self.cve) not in ids:
            return False
        if self.finding is not None:
            # The assessment on one finding speaks for that finding, and for another record of
            # the same package on the image (another scanner's id for it), never for others.
            if finding.occurrence == self.finding:
                return True
            if not self.package:
                return False
            return finding.package == self.package or purl_is_package(
                finding.purl or "", self.package
            )
        if self.scopes is None:
            return True
        return any(scope_applies(s, image, finding.purl or "") for s in self.scopes)


@dataclass(frozen=True, slots=True)
class VulnerabilityScan:
    """A *finished vulnerability* scan (the service drops pending, failed and other kinds)."""

    scanned_at: datetime
    scanner: str
    occurrence: str | None = None
    attestor: str | None = None


#: The ``source`` of an :class:`IncompleteEvidence` about unsigned Grafeas facts.
UNSIGNED = "unsigned"


@dataclass(frozen=True, slots=True)
class IncompleteEvidence:
    """Evidence the service could not read or verify in full (a bound was hit, the deadline
    came, a document was unreadable). ``source`` is the attestor whose evidence is incomplete,
    or :data:`UNSIGNED` for the unsigned facts; a rule that counts that source fails closed
    with ``reason`` instead of deciding on what happened to be read."""

    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProvenanceFact:
    """What verified SLSA provenance says about how the image was built."""

    builder_id: str
    source_uris: tuple[str, ...] = ()
    occurrence: str | None = None
    attestor: str | None = None


@dataclass(frozen=True, slots=True)
class SbomFact:
    """An SBOM recorded for the image: an SBOM_REFERENCE occurrence (unsigned), or a verified
    CycloneDX/SPDX statement (``attestor`` set)."""

    format: str  # "CycloneDX" or "SPDX"
    version: str
    occurrence: str | None = None
    attestor: str | None = None


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """A package the image contains: from a PACKAGE occurrence (unsigned), or read from a
    verified SBOM statement (``attestor`` set; ``occurrence`` is the attestation)."""

    name: str
    version: str
    purl: str = ""
    license: str = ""  # an SPDX expression
    occurrence: str | None = None
    attestor: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformEvidence:
    """One per-platform manifest of an image index, and the attestors whose evidence on it
    verified (attestor → the occurrences or registry manifests that carried it)."""

    digest: str
    platform: str = ""  # "linux/arm64"; empty when the index does not say
    attested_by: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attested_by", MappingProxyType(dict(self.attested_by)))

    def describe(self) -> str:
        return f"{self.digest} ({self.platform})" if self.platform else self.digest


@dataclass(frozen=True, slots=True)
class ImageEvidence:
    """Everything gathered for one image digest."""

    attestations: tuple[VerifiedAttestation, ...] = ()
    failed_attestations: tuple[FailedAttestation, ...] = ()
    vulnerabilities: tuple[VulnerabilityFinding, ...] = ()
    vex: tuple[VexStatement, ...] = ()
    scans: tuple[VulnerabilityScan, ...] = ()
    provenance: tuple[ProvenanceFact, ...] = ()
    incomplete: tuple[IncompleteEvidence, ...] = ()
    sboms: tuple[SbomFact, ...] = ()
    packages: tuple[InstalledPackage, ...] = ()
    #: More packages were recorded than were read: a package rule cannot clear the image.
    packages_truncated: bool = False
    #: The per-platform manifests when the image is an index, each with who vouched for it;
    #: ``()`` when it is a single manifest; None when nobody read which it is (no rule asked
    #: for evidence on every platform).
    platforms: tuple[PlatformEvidence, ...] | None = None

    def scoped_to(self, attestors: frozenset[str]) -> ImageEvidence:
        """Only what ``attestors`` signed, plus the unsigned Grafeas facts: the evidence one
        rule may count. Facts signed by any other attestor are dropped, however valid."""

        def ours(who: str | None) -> bool:
            return who is None or who in attestors

        return ImageEvidence(
            attestations=tuple(a for a in self.attestations if a.attestor in attestors),
            failed_attestations=tuple(f for f in self.failed_attestations if ours(f.attestor)),
            vulnerabilities=tuple(v for v in self.vulnerabilities if ours(v.attestor)),
            vex=tuple(v for v in self.vex if ours(v.attestor)),
            scans=tuple(s for s in self.scans if ours(s.attestor)),
            provenance=tuple(p for p in self.provenance if p.attestor in attestors),
            incomplete=tuple(
                i for i in self.incomplete if i.source == UNSIGNED or i.source in attestors
            ),
            sboms=tuple(s for s in self.sboms if ours(s.attestor)),
            packages=tuple(p for p in self.packages if ours(p.attestor)),
            packages_truncated=self.packages_truncated,
            platforms=None
            if self.platforms is None
            else tuple(
                PlatformEvidence(
                    p.digest,
                    p.platform,
                    {a: s for a, s in p.attested_by.items() if a in attestors},
                )
                for p in self.platforms
            ),
        )

    def signed_by(self, attestors: frozenset[str]) -> ImageEvidence:
        """Only what ``attestors`` signed — no unsigned Grafeas fact at all: the evidence of a
        check that demands attested evidence (``attestedBy``). Applied on top of
        :meth:`scoped_to`, so it never widens what a rule may count."""

        def signed(who: str | None) -> bool:
            return who is not None and who in attestors

        return ImageEvidence(
            attestations=tuple(a for a in self.attestations if a.attestor in attestors),
            failed_attestations=tuple(f for f in self.failed_attestations if signed(f.attestor)),
            vulnerabilities=tuple(v for v in self.vulnerabilities if signed(v.attestor)),
            vex=tuple(v for v in self.vex if signed(v.attestor)),
            scans=tuple(s for s in self.scans if signed(s.attestor)),
            provenance=tuple(p for p in self.provenance if signed(p.attestor)),
            incomplete=tuple(i for i in self.incomplete if i.source in attestors),
            sboms=tuple(s for s in self.sboms if signed(s.attestor)),
            packages=tuple(p for p in self.packages if signed(p.attestor)),
            # Unsigned packages are not looked at, so their bound does not matter here; a
            # signed SBOM too large to read is reported as incomplete evidence of its signer.
            packages_truncated=False,
        )


EMPTY_EVIDENCE = ImageEvidence()


def evidence_key(image: str | ImageReference) -> str:
    """The key evidence is filed under: the canonical ``registry/repository@sha256:…``."""
    ref = parse_image_reference(image) if isinstance(image, str) else image
    return ref.canonical


@dataclass(frozen=True, slots=True)
class Evidence:
    """Evidence for every image of a request, and the attestors it was verified against.

    ``attestors`` is the set the service used while verifying (keyed by resource name); the
    evaluator needs it to tell an unknown attestor from an unattested image, and to refuse a
    verification made under a key the attestor no longer lists (a rotated-out key).
    ``unusable_attestors`` maps the attestors whose stored documents could not be read to why:
    only rules that name one of them fail on it.
    """

    images: Mapping[str, ImageEvidence] = field(default_factory=dict)
    attestors: Mapping[str, Attestor] = field(default_factory=dict)
    unusable_attestors: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        normalised: dict[str, ImageEvidence] = {}
        for key, value in self.images.items():
            try:
                normalised[evidence_key(key)] = value
            except InvalidArgument:
                normalised[key] = value
        object.__setattr__(self, "images", MappingProxyType(normalised))
        object.__setattr__(self, "attestors", MappingProxyType(dict(self.attestors)))
        object.__setattr__(
            self, "unusable_attestors", MappingProxyType(dict(self.unusable_attestors))
        )

    def for_image(self, image: ImageReference) -> ImageEvidence:
        return self.images.get(image.canonical, EMPTY_EVIDENCE)
